import { keySegments } from '../keys.js';

/**
 * Parses `s3://<bucket>[/<key-prefix>]?endpoint=…&region=…&forcePathStyle=…&createBucket=…`.
 *
 * Errors name the problem but never echo the URL: it may carry `secretAccessKey`,
 * and these messages end up in logs and on the console.
 */

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface S3Location {
  bucket: string;
  /** Key prefix inside the bucket, without leading or trailing '/'; '' for the whole bucket. */
  prefix: string;
  /** Custom endpoint (MinIO, R2, s3rver); undefined means AWS S3 for `region`. */
  endpoint?: string;
  region: string;
  forcePathStyle: boolean;
  /** Create the bucket at init() if it is missing (off by default: a typo should fail, not create). */
  createBucket: boolean;
  /** Only when given in the URL; otherwise the SDK's default chain (env vars first) applies. */
  credentials?: S3Credentials;
}

const PARAMS = ['endpoint', 'region', 'forcePathStyle', 'createBucket', 'accessKeyId', 'secretAccessKey'] as const;
type Param = (typeof PARAMS)[number];

// S3 bucket naming rules (also what MinIO and R2 enforce): 3–63 chars of a-z 0-9 . -
const BUCKET_RE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

function fail(problem: string): Error {
  return new Error(`Invalid s3:// blob store URL: ${problem}. Expected s3://<bucket>[/<prefix>]?endpoint=…&region=…`);
}

function bool(name: Param, value: string | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw fail(`${name} must be true or false`);
}

export function parseS3Url(url: string, env: NodeJS.ProcessEnv = process.env): S3Location {
  if (!/^s3:\/\//i.test(url)) throw fail('it must start with s3://');
  // Parse by hand rather than with `new URL`: the bucket sits where a host would, and
  // URL would silently accept (and mangle) userinfo, ports and odd characters there.
  const rest = url.slice('s3://'.length);
  const q = rest.indexOf('?');
  const location = q < 0 ? rest : rest.slice(0, q);
  const query = q < 0 ? '' : rest.slice(q + 1);
  if (location.includes('#') || query.includes('#')) throw fail('a #fragment is not allowed');

  const slash = location.indexOf('/');
  const bucket = slash < 0 ? location : location.slice(0, slash);
  const rawPrefix = slash < 0 ? '' : location.slice(slash + 1);
  if (bucket.includes('@')) throw fail('credentials do not belong before the bucket name; use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY');
  if (bucket === '') throw fail('the bucket name is missing');
  if (!BUCKET_RE.test(bucket) || bucket.includes('..')) {
    // Not echoed: a mistyped URL can put a secret where the bucket name belongs.
    throw fail("the bucket name is not a valid S3 bucket name (3-63 characters: a-z, 0-9, '.', '-')");
  }

  let prefix = '';
  if (rawPrefix !== '') {
    let decoded: string;
    try {
      decoded = decodeURIComponent(rawPrefix);
    } catch {
      throw fail('the key prefix has a bad %-escape');
    }
    try {
      // The same rules as blob keys, so a prefix can never smuggle in '..' or empty segments.
      prefix = keySegments(decoded, true).join('/');
    } catch {
      throw fail('the key prefix must be /-separated non-empty segments without ".", "..", NUL or backslash');
    }
  }

  const params = new Map<Param, string>();
  if (query !== '') {
    for (const [name, value] of new URLSearchParams(query)) {
      // Unknown names are refused so a typo (forcepathstyle, createbucket) is not silently ignored.
      if (!(PARAMS as readonly string[]).includes(name)) {
        throw fail(`unknown parameter ${JSON.stringify(name)}; known parameters are ${PARAMS.join(', ')}`);
      }
      if (params.has(name as Param)) throw fail(`parameter ${name} is given twice`);
      params.set(name as Param, value);
    }
  }

  let endpoint: string | undefined;
  const rawEndpoint = params.get('endpoint');
  if (rawEndpoint !== undefined) {
    let u: URL;
    try {
      u = new URL(rawEndpoint);
    } catch {
      throw fail('endpoint must be an absolute http:// or https:// URL');
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw fail('endpoint must be an absolute http:// or https:// URL');
    if (u.username || u.password) throw fail('endpoint must not contain credentials; use AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY');
    if (u.search || u.hash) throw fail('endpoint must not have a query or fragment (URL-encode it if it is meant as one parameter)');
    endpoint = u.href.replace(/\/$/, '');
  }

  const region = params.get('region') ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1';
  if (!/^[a-z0-9-]+$/i.test(region)) throw fail('region must be letters, digits and dashes (e.g. us-east-1, or auto for R2)');

  const accessKeyId = params.get('accessKeyId');
  const secretAccessKey = params.get('secretAccessKey');
  if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) {
    throw fail('accessKeyId and secretAccessKey must be given together (or neither: AWS_* environment variables are preferred)');
  }
  if (accessKeyId === '' || secretAccessKey === '') throw fail('accessKeyId and secretAccessKey must not be empty');

  return {
    bucket,
    prefix,
    ...(endpoint !== undefined ? { endpoint } : {}),
    region,
    // Custom endpoints (MinIO, s3rver, R2) are usually addressed by path; AWS prefers virtual hosts.
    forcePathStyle: bool('forcePathStyle', params.get('forcePathStyle'), endpoint !== undefined),
    createBucket: bool('createBucket', params.get('createBucket'), false),
    ...(accessKeyId !== undefined && secretAccessKey !== undefined ? { credentials: { accessKeyId, secretAccessKey } } : {}),
  };
}
