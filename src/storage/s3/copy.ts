import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  UploadPartCopyCommand,
  type S3Client,
} from '@aws-sdk/client-s3';

/**
 * Server-side copy of one object onto another key with new metadata, used to publish
 * a finished multipart upload under its real key together with its sha256 (which is
 * only known once the last byte went up, after S3 fixed the upload's metadata).
 *
 * CopyObject takes at most 5 GiB; bigger objects are copied part by part with
 * UploadPartCopy, which every S3-compatible server we target supports (s3rver does not,
 * so that branch is exercised only against real servers).
 */

export const SINGLE_COPY_LIMIT = 5 * 1024 * 1024 * 1024;
/** Parts of a multipart copy; 10,000 of them cover 5 TiB, S3's object size limit. */
const COPY_PART_SIZE = 512 * 1024 * 1024;

export interface CopyTarget {
  bucket: string;
  fromKey: string;
  toKey: string;
  size: number;
  contentType: string | undefined;
  metadata: Record<string, string>;
}

/** The x-amz-copy-source value: bucket and key, each segment URL-encoded as S3 requires. */
function copySource(bucket: string, key: string): string {
  return [bucket, ...key.split('/')].map(encodeURIComponent).join('/');
}

export async function copyWithMetadata(client: S3Client, t: CopyTarget): Promise<void> {
  const common = {
    Bucket: t.bucket,
    Key: t.toKey,
    Metadata: t.metadata,
    ...(t.contentType !== undefined ? { ContentType: t.contentType } : {}),
  };
  if (t.size <= SINGLE_COPY_LIMIT) {
    await client.send(new CopyObjectCommand({ ...common, CopySource: copySource(t.bucket, t.fromKey), MetadataDirective: 'REPLACE' }));
    return;
  }
  const { UploadId } = await client.send(new CreateMultipartUploadCommand(common));
  if (!UploadId) throw new Error('S3 CreateMultipartUpload returned no UploadId');
  try {
    const parts: Array<{ PartNumber: number; ETag: string }> = [];
    const count = Math.ceil(t.size / COPY_PART_SIZE);
    // Two parts at a time, like uploads: enough to keep the server busy, little to retry.
    for (let first = 1; first <= count; first += 2) {
      const batch = [first, first + 1].filter((n) => n <= count);
      const done = await Promise.all(
        batch.map(async (n) => {
          const start = (n - 1) * COPY_PART_SIZE;
          const end = Math.min(t.size, n * COPY_PART_SIZE) - 1;
          const r = await client.send(
            new UploadPartCopyCommand({
              Bucket: t.bucket,
              Key: t.toKey,
              UploadId,
              PartNumber: n,
              CopySource: copySource(t.bucket, t.fromKey),
              CopySourceRange: `bytes=${start}-${end}`,
            }),
          );
          const etag = r.CopyPartResult?.ETag;
          if (!etag) throw new Error(`S3 UploadPartCopy returned no ETag for part ${n}`);
          return { PartNumber: n, ETag: etag };
        }),
      );
      parts.push(...done);
    }
    await client.send(new CompleteMultipartUploadCommand({ Bucket: t.bucket, Key: t.toKey, UploadId, MultipartUpload: { Parts: parts } }));
  } catch (e) {
    await client.send(new AbortMultipartUploadCommand({ Bucket: t.bucket, Key: t.toKey, UploadId })).catch(() => {});
    throw e;
  }
}
