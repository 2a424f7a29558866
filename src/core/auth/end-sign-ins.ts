import type { SessionService } from './sessions.js';
import type { TokenService } from './tokens.js';

/**
 * Signs a user out everywhere but the session `keep` (a session hash): after their
 * password changed, say. Each ended session's tokens go first (freezr's account token,
 * app page tokens, app-origin sessions): a token is checked on its own, not against its
 * session, so a session deleted alone would leave them working. App passwords and the
 * app tokens bought with them belong to no sign-in and stay (the home page revokes those).
 */
export async function endSignIns(sessions: SessionService, tokens: TokenService, userId: string, keep?: string): Promise<number> {
  const hashes = await sessions.hashesOf(userId, keep);
  for (const hash of hashes) await tokens.revokeSession(hash);
  await sessions.destroyMany(hashes);
  return hashes.length;
}
