import { Type } from './typed-schema.js';

/** Route schema pieces shared by the API plugins. Names are checked again in core. */
export const AppTableParam = Type.String({ minLength: 1, maxLength: 100, description: 'App table: <app_name> or <app_name>.<collection>' });
export const RecordIdParam = Type.String({ minLength: 1, maxLength: 200, description: 'Record id' });
/**
 * A record id of several path segments, sent unencoded (a file's path, `a/b.gif`, as
 * freezrApiV2 sends it): the first segment, then the rest. The id is checked whole.
 */
export const MultiSegmentRecordParams = Type.Object({ app_table: AppTableParam, id: RecordIdParam, '*': Type.String({ maxLength: 1000 }) });
export const multiSegmentId = (params: { id: string; '*': string }): string => `${params.id}/${params['*']}`;
export const AppNameParam = Type.String({ minLength: 1, maxLength: 35, description: 'App name (reverse-domain)' });
export const AnyObject = Type.Object({}, { additionalProperties: true });
export const ErrorReply = Type.Object({ error: Type.String(), message: Type.String(), details: Type.Optional(Type.Unknown()) });
export const WriteReply = Type.Object({ _id: Type.String(), _date_created: Type.Number(), _date_modified: Type.Number() });
export const bearer = [{ bearer: [] as string[] }];
