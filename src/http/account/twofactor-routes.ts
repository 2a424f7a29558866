import { Type } from '../typed-schema.js';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { requireOwner } from '../auth.js';
import { loginRateLimit } from '../rate-limits.js';
import { FreeholdError } from '../../core/errors.js';

const Code = Type.String({ minLength: 1, maxLength: 20, description: 'Code from the authenticator app' });
const RecoveryCode = Type.String({ minLength: 1, maxLength: 40, description: 'One of the recovery codes' });
const StatusReply = Type.Object({ enabled: Type.Boolean(), pending: Type.Boolean(), recovery_codes_left: Type.Integer() });
const CodesReply = Type.Object({ enabled: Type.Boolean(), recovery_codes: Type.Array(Type.String()) });

/**
 * The signed-in owner's two-factor settings. A wrong code or password here is 403,
 * not 401: the session is fine, and the pages treat 401 as "signed out".
 * Everything that checks a code or a password shares the sign-in rate limit.
 */
export async function twoFactorRoutes(fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { services } = app;
  const limited = { rateLimit: loginRateLimit(services) };
  const wrong = () => new FreeholdError('forbidden', 'Wrong or already used code');

  app.get('/acctapi/2fa', {
    schema: { tags: ['account'], summary: 'Whether two-factor sign-in is on', response: { 200: StatusReply } },
  }, async (request) => {
    const { user } = await requireOwner(services, request);
    const s = await services.twoFactor.status(user.userId);
    return { enabled: s.enabled, pending: s.pending, recovery_codes_left: s.recoveryCodesLeft };
  });

  app.post('/acctapi/2fa/setup', {
    config: limited,
    schema: {
      tags: ['account'], summary: 'Start two-factor set-up: a new secret, pending until confirmed',
      response: { 200: Type.Object({
        secret: Type.String(), otpauth_uri: Type.String(),
        qr_svg: Type.String({ description: 'The otpauth URI as a QR code (SVG), for a phone to scan' }),
      }) },
    },
  }, async (request) => {
    const { user } = await requireOwner(services, request);
    // The issuer names this server in the authenticator app, beside the user id.
    const issuer = `freehold (${new URL(services.config.publicUrl).host})`;
    const { secret, uri } = await services.twoFactor.beginSetup(user.userId, issuer);
    // Loaded on use: set-up is rare, and the server does not hold the encoder in memory otherwise.
    const { renderSVG } = await import('uqr');
    return { secret, otpauth_uri: uri, qr_svg: renderSVG(uri, { border: 4, pixelSize: 6 }) };
  });

  app.post('/acctapi/2fa/confirm', {
    config: limited,
    schema: {
      tags: ['account'], summary: 'Turn two-factor sign-in on with a first code; returns the recovery codes (shown once)',
      body: Type.Object({ code: Code }), response: { 200: CodesReply },
    },
  }, async (request) => {
    const { user } = await requireOwner(services, request);
    const codes = await services.twoFactor.confirm(user.userId, request.body.code);
    request.log.info({ user: user.userId }, 'two-factor sign-in turned on');
    return { enabled: true, recovery_codes: codes };
  });

  app.post('/acctapi/2fa/disable', {
    config: limited,
    schema: {
      tags: ['account'], summary: 'Turn two-factor sign-in off (password and a code or recovery code)',
      body: Type.Object({ password: Type.String({ minLength: 1, maxLength: 1024 }), code: Type.Optional(Code), recovery_code: Type.Optional(RecoveryCode) }),
      response: { 200: Type.Object({ enabled: Type.Boolean() }) },
    },
  }, async (request) => {
    const { user } = await requireOwner(services, request);
    const { password, code, recovery_code: recoveryCode } = request.body;
    // A session left open on a shared computer must not be enough to drop the second factor.
    if (!(await services.accounts.verify(user.userId, password))) throw new FreeholdError('forbidden', 'Wrong password');
    if (await services.twoFactor.isEnabled(user.userId)) {
      if (code === undefined && recoveryCode === undefined) throw new FreeholdError('bad_request', 'Give a code from your app or a recovery code');
      if (!(await services.twoFactor.verify(user.userId, { totp: code, recoveryCode }))) throw wrong();
    }
    await services.twoFactor.disable(user.userId);
    request.log.info({ user: user.userId }, 'two-factor sign-in turned off');
    return { enabled: false };
  });

  app.post('/acctapi/2fa/recovery-codes', {
    config: limited,
    schema: {
      tags: ['account'], summary: 'Replace the recovery codes (the old ones stop working)',
      body: Type.Object({ code: Code }), response: { 200: CodesReply },
    },
  }, async (request) => {
    const { user } = await requireOwner(services, request);
    if (!(await services.twoFactor.isEnabled(user.userId))) throw new FreeholdError('conflict', 'Two-factor sign-in is off');
    if (!(await services.twoFactor.verifyTotp(user.userId, request.body.code))) throw wrong();
    return { enabled: true, recovery_codes: await services.twoFactor.replaceRecoveryCodes(user.userId) };
  });
}
