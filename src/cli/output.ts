// Output paths of the CLI commands, checked before any work (main.ts's --out, model.ts's --save), and the
// one-line text of a failed system call.
import { statSync, type Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';

const ERRNO_TEXT: Record<string, string> = {
  ENOENT: 'does not exist',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'is a directory',
  ENOTDIR: 'a part of the path is not a directory',
  ENOSPC: 'no space left on device',
  EROFS: 'read-only file system',
  EEXIST: 'already exists',
  EMFILE: 'too many open files',
  ENAMETOOLONG: 'name too long',
  ELOOP: 'too many symbolic links',
  EPIPE: 'its reader has closed it',
};

export function errnoText(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code === undefined ? String((e as Error)?.message ?? e) : `${ERRNO_TEXT[code] ?? code} (${code})`;
}

/**
 * Why `path` cannot be an output file (its folder is missing or not a folder, or it names a folder), or null.
 * Writing still checks everything; this only makes the common mistakes fail fast and clearly.
 */
export function outputProblem(path: string, option: string): string | null {
  const folder = dirname(resolve(path));
  let dst: Stats;
  try {
    dst = statSync(folder);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return `output folder does not exist: ${folder} (${option} ${path})`;
    return `cannot use output folder ${folder}: ${errnoText(e)}`;
  }
  if (!dst.isDirectory()) return `output folder ${folder} is not a directory (${option} ${path})`;
  try {
    if (statSync(path).isDirectory()) return `${option} ${path} names a directory; give a file path`;
  } catch {
    // does not exist yet: fine
  }
  return null;
}
