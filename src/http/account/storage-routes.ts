import { Type } from '../typed-schema.js';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { requireAdmin, requireOwner } from '../auth.js';
import { assertUserId } from '../../core/names.js';
import { FreeholdError } from '../../core/errors.js';
import { chooseOwnerStorage, maskStoreUrl } from '../../core/storage-settings.js';

const StorageReply = Type.Object({
  user_id: Type.String(), records: Type.String(), blobs: Type.String(), state: Type.String(),
  previous: Type.Optional(Type.Object({ records: Type.String(), blobs: Type.String() })),
});
const StorageBody = Type.Object({
  records: Type.Optional(Type.String({ minLength: 3, maxLength: 2000 })),
  blobs: Type.Optional(Type.String({ minLength: 3, maxLength: 2000 })),
});

/** Where an owner's data lives: shown to the owner, chosen by the admin (or the owner, where allowed). */
export async function storageRoutes(fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { services } = app;
  const describe = (userId: string) => {
    const s = services.stores.storageOf(userId);
    return {
      user_id: userId, records: maskStoreUrl(s.records), blobs: maskStoreUrl(s.blobs), state: s.state,
      ...(s.previous ? { previous: { records: maskStoreUrl(s.previous.records), blobs: maskStoreUrl(s.previous.blobs) } } : {}),
    };
  };

  const storageContext = (chosenByOwner: boolean) => ({
    chosenByOwner, allowPrivateAddresses: services.config.ownerStoragePrivate, backupBlobs: services.config.backupBlobs,
  });

  app.get('/acctapi/storage', {
    schema: { tags: ['account'], summary: "Where the signed-in owner's data is kept", response: { 200: StorageReply } },
  }, async (request) => describe((await requireOwner(services, request)).user.userId));

  app.put('/acctapi/storage', {
    schema: { tags: ['account'], summary: 'Choose own stores (when the admin allows; before any data exists)', body: StorageBody, response: { 200: StorageReply } },
  }, async (request) => {
    const owner = await requireOwner(services, request);
    if (!services.config.ownerStorage && !owner.user.isAdmin) {
      throw new FreeholdError('forbidden', 'On this server only the admin chooses storage');
    }
    await chooseOwnerStorage(services.stores, owner.user.userId, request.body, storageContext(!owner.user.isAdmin));
    return describe(owner.user.userId);
  });

  app.put('/acctapi/users/:user_id/storage', {
    schema: {
      tags: ['admin'], summary: "Set a user's stores (admin; before the user has data)",
      params: Type.Object({ user_id: Type.String({ maxLength: 34 }) }), body: StorageBody, response: { 200: StorageReply },
    },
  }, async (request) => {
    await requireAdmin(services, request);
    const userId = assertUserId(request.params.user_id);
    if (!(await services.accounts.get(userId))) throw new FreeholdError('not_found', 'No such user');
    await chooseOwnerStorage(services.stores, userId, request.body, storageContext(false));
    return describe(userId);
  });

  const QuotaShape = Type.Object({ bytes: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }), records: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }) });
  const UsageReply = Type.Object({ user_id: Type.String(), records: Type.Number(), bytes: Type.Number(), quota: QuotaShape });

  const usageOf = async (userId: string) => {
    const [usage, quota] = await Promise.all([services.quota.usage(userId), services.quota.quotaOf(userId)]);
    return { user_id: userId, records: usage.records, bytes: usage.bytes, quota };
  };

  app.get('/acctapi/usage', {
    schema: { tags: ['account'], summary: "The signed-in owner's storage use and quota (0: unlimited)", response: { 200: UsageReply } },
  }, async (request) => usageOf((await requireOwner(services, request)).user.userId));

  app.put('/acctapi/users/:user_id/quota', {
    schema: {
      tags: ['admin'], summary: "Set a user's quota (admin); null goes back to the host's default",
      params: Type.Object({ user_id: Type.String({ maxLength: 34 }) }),
      body: Type.Object({ quota: Type.Union([QuotaShape, Type.Null()]) }), response: { 200: UsageReply },
    },
  }, async (request) => {
    await requireAdmin(services, request);
    const userId = assertUserId(request.params.user_id);
    if (!(await services.accounts.get(userId))) throw new FreeholdError('not_found', 'No such user');
    await services.quota.setQuota(userId, request.body.quota);
    return usageOf(userId);
  });
}
