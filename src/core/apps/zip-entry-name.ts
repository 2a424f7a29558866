import type yauzl from 'yauzl';

const UTF8_FLAG = 0x800;
const INFO_ZIP_UNICODE_PATH = 0x7075;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * An entry's name as its zip tool meant it. The zip format says a name without the
 * UTF-8 flag (and without Info-ZIP's Unicode path field) is CP437; but Info-ZIP's `zip`
 * 3.0, which unpacked exports and app folders are often zipped again with, writes
 * UTF-8 names without the flag. Bytes that form valid UTF-8 are read as such (as
 * unzip and 7-Zip do on such archives): CP437 text with letters beyond ASCII almost
 * never does. The name comes raw (strict: backslashes stay visible to the path checks).
 * yauzl is passed in: app installs load it only when used (idle memory).
 */
export function zipEntryName(zip: typeof yauzl, entry: yauzl.Entry): string {
  const raw = entry.fileNameRaw;
  const flagged = (entry.generalPurposeBitFlag & UTF8_FLAG) !== 0 || entry.extraFields.some((f) => f.id === INFO_ZIP_UNICODE_PATH);
  if (!flagged) {
    try {
      return strictUtf8.decode(raw);
    } catch {
      // Not UTF-8: the format's default, CP437, below.
    }
  }
  return zip.getFileNameLowLevel(entry.generalPurposeBitFlag, raw, entry.extraFields, true);
}
