// Node's closeIdleConnections() leaves alone a connection that has not sent a request yet (a
// client's spare or pre-opened socket): server.close() would then wait until the client drops it.
// At shutdown this closes every socket that is not writing an answer. Nothing is done per request:
// a per-request listener here cost a quarter of the hit-path throughput (bench/results).
import type { Server, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'

export function trackSockets(server: Server): { closeIdle(): void } {
  const sockets = new Set<Socket>()
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  return {
    closeIdle() {
      // Node sets socket._httpMessage to the answer in progress; answers that finish later carry
      // Connection: close (set here, and for later requests by the listener app.ts adds), which ends
      // their socket.
      for (const socket of sockets) {
        const res = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage
        if (!res) socket.destroy()
        else if (!res.headersSent) res.setHeader('connection', 'close')
      }
    },
  }
}
