// What can be read off the token without verifying it: its expiry (the JWT "exp" claim).
// JobProgress tokens are JWTs valid for a year; the proxy warns from 14 days before the end.

export const EXPIRY_WARNING_DAYS = 14

/** The `exp` claim of a JWT, decoded (not verified); undefined when the token is not a JWT or has none. */
export function jwtExpiry(token: string): Date | undefined {
  const parts = token.split('.')
  if (parts.length !== 3) return undefined
  try {
    const payload = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as { exp?: unknown }
    return typeof payload.exp === 'number' && Number.isFinite(payload.exp) ? new Date(payload.exp * 1000) : undefined
  } catch {
    return undefined
  }
}

export function daysLeft(expiresAt: Date | undefined, now = Date.now()): number | undefined {
  return expiresAt ? Math.floor((expiresAt.getTime() - now) / 86_400_000) : undefined
}
