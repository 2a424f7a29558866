import { withUploadedFile } from '../upload-to-temp.js';
import { PassThrough } from 'node:stream';
import { Type } from '../typed-schema.js';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { DEFAULT_IMPORT_LIMITS } from '../../core/portability/limits.js';
import { requireOwner } from '../auth.js';
import { ErrorReply } from '../schemas.js';
import { SERVER_VERSION } from '../version.js';

/**
 * The signed-in owner's export and import (docs/export-format.md). The export
 * streams straight from the stores into the response; the import is streamed to a
 * temp file first, because a zip is read from its end (the central directory) and
 * the import reads it twice (verify, then write).
 *
 * The export and import code (zip libraries, archive validation) is imported on the
 * first request that needs it: most servers never see one, and idle memory matters.
 */

const ImportReply = Type.Object({
  imported: Type.Boolean(),
  tables: Type.Record(Type.String(), Type.Integer()),
  files: Type.Integer(),
  apps: Type.Integer(),
  /** What the import did with them: written, already here as they are, kept because changed here since the export. */
  records_written: Type.Integer(),
  records_unchanged: Type.Integer(),
  records_kept_newer: Type.Integer(),
  files_written: Type.Integer(),
  files_unchanged: Type.Integer(),
  app_files_written: Type.Integer({ description: "Files of the apps' packages (counted apart from the owner's files)" }),
  app_files_unchanged: Type.Integer(),
});

export async function portabilityRoutes(fastify: FastifyInstance): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { services } = app;

  app.get('/acctapi/export', {
    schema: {
      tags: ['account'], summary: "Download the signed-in owner's records, files and apps as one zip",
      // No response schema: the 200 body is a stream, and a typed reply would refuse it.
      produces: ['application/zip'],
    },
  }, async (request, reply) => {
    const owner = await requireOwner(services, request);
    const userId = owner.user.userId;
    const date = new Date().toISOString().slice(0, 10);
    reply.header('Content-Disposition', `attachment; filename="freehold-export-${userId}-${date}.zip"`).header('Cache-Control', 'no-store').type('application/zip');
    // A HEAD asks only whether the download would start: no archive is made for it.
    if (request.method === 'HEAD') return reply.send();
    const { exportOwner } = await import('../../core/portability/export.js');
    const body = new PassThrough();
    // Not awaited: the response is the stream. A failure destroys `body`, so the client
    // gets an aborted download (an invalid zip), never a plausible partial archive; a
    // client hanging up destroys `body` too, which stops the export.
    exportOwner(services, userId, body, undefined, { serverVersion: SERVER_VERSION })
      .then((s) => request.log.info({ user: userId, entries: s.entries, bytes: s.bytes }, 'export sent'))
      .catch((err: unknown) => request.log.warn({ err, user: userId }, 'export stopped'));
    return reply.send(body);
  });

  app.post('/acctapi/import', {
    schema: {
      tags: ['account'], summary: 'Import an export archive (multipart field `file`) into the signed-in owner', consumes: ['multipart/form-data'],
      response: { 200: ImportReply, 400: ErrorReply, 401: ErrorReply, 413: ErrorReply },
    },
  }, async (request) => {
    const owner = await requireOwner(services, request);
    return withUploadedFile(request, 'the archive', DEFAULT_IMPORT_LIMITS.maxArchiveBytes, async (zipPath) => {
      const { importOwner } = await import('../../core/portability/import.js');
      const r = await importOwner(services, owner.user.userId, zipPath);
      request.log.info({ user: owner.user.userId, written: r.recordsWritten + r.blobsWritten + r.appFilesWritten }, 'import done');
      return {
        imported: true, tables: r.tables, files: r.files, apps: r.apps,
        records_written: r.recordsWritten, records_unchanged: r.recordsUnchanged, records_kept_newer: r.recordsNewerKept,
        files_written: r.blobsWritten, files_unchanged: r.blobsUnchanged,
        app_files_written: r.appFilesWritten, app_files_unchanged: r.appFilesUnchanged,
      };
    });
  });
}
