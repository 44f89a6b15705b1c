/**
 * rsync's --backup, --backup-dir and --suffix: a destination file that a sync replaces or deletes is
 * kept, as PATH + SUFFIX beside it ('~' by default), or under a backup directory inside the root
 * (BACKUP_DIR/PATH + SUFFIX, the suffix empty by default). One backup per path: a later one replaces
 * it. Directories are not backed up themselves; what a deleted one held is, file by file.
 *
 * The client sends the options in its hello; an agent that keeps backups lists BACKUP_CAPABILITY.
 * Backups are protected from --delete: those beside their files by their suffix, the backup
 * directory as a whole.
 */
import { PathError, TransportError } from './errors.js';
import { checkWirePath } from './paths.js';

export const BACKUP_CAPABILITY = 'backup';

/** What a caller asks for: `dir` a wire path inside the root; `suffix` default '~', or '' with `dir`. */
export interface BackupOptions {
  dir?: string;
  suffix?: string;
}

/** Backup options checked, with the suffix decided. */
export interface Backup {
  dir: string | undefined;
  suffix: string;
}

/** The checked form of `options`: INVALID_OPTION (or a PathError for the directory) when malformed. */
export function checkBackup(options: BackupOptions): Backup {
  const dir = options.dir === undefined ? undefined : options.dir.replace(/\/+$/, '');
  if (dir !== undefined) {
    if (dir === '') throw new PathError('PATH_INVALID', 'the backup directory is the root itself', { dir: options.dir });
    checkWirePath(dir); // inside the root: relative, no '..'
  }
  const suffix = options.suffix ?? (dir === undefined ? '~' : '');
  if (suffix.includes('/') || suffix.includes('\0') || suffix.length > 255) {
    throw new TransportError('INVALID_OPTION', `backup suffix ${JSON.stringify(suffix)} must be a name's ending: no '/', no NUL`, { suffix });
  }
  if (dir === undefined && suffix === '') throw new TransportError('INVALID_OPTION', 'an empty backup suffix needs a backup directory (it would name the file itself)', { suffix });
  return { dir, suffix };
}

/** Where the backup of wire path `path` goes (a wire path). */
export function backupPath(backup: Backup, path: string): string {
  return backup.dir === undefined ? `${path}${backup.suffix}` : `${backup.dir}/${path}${backup.suffix}`;
}

/** Whether a destination entry is a backup (or the backup directory): never deleted as extraneous. */
export function isBackup(backup: Backup, path: string): boolean {
  if (backup.dir !== undefined) return path === backup.dir || path.startsWith(`${backup.dir}/`);
  return path.endsWith(backup.suffix);
}
