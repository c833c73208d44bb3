// Node's closeIdleConnections() leaves alone a connection that has not sent a request yet (a
// client's spare or pre-opened socket): server.close() would then wait until the client drops it.
// This keeps count of requests per socket so that shutdown can close every socket not serving one.
import type { Server } from 'node:http'
import type { Socket } from 'node:net'

export function trackSockets(server: Server): { closeIdle(): void } {
  const inUse = new Map<Socket, number>()
  let closing = false
  server.on('connection', (socket: Socket) => {
    inUse.set(socket, 0)
    socket.once('close', () => inUse.delete(socket))
  })
  server.on('request', (req, res) => {
    const socket = req.socket
    inUse.set(socket, (inUse.get(socket) ?? 0) + 1)
    res.once('close', () => {
      const n = (inUse.get(socket) ?? 1) - 1
      inUse.set(socket, n)
      if (closing && n === 0) socket.end()
    })
  })
  return {
    closeIdle() {
      closing = true
      for (const [socket, n] of inUse) if (n === 0) socket.destroy()
    },
  }
}
