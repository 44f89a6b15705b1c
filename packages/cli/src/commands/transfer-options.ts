/** The options `sync` and `watch` share: what to transfer, how to reach destinations, how to commit. */
import { checkBackup, MAX_LINK_DEST_DIRS, parseChmod, parseDestination, parseFilterFile, parseFilterRule, splitCommand, type FilterRule } from '@deltacast/transport';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { integer, seconds, sizeLimit, transferRate } from '../options.js';
import { UsageError } from '../errors.js';

export interface SshFlags {
  port?: number;
  identity?: string;
  config?: string;
  acceptNewHostKeys: boolean;
  remoteCommand?: string;
  jump?: string;
  rsh?: string;
  /** --contimeout, in ms. */
  contimeout?: number;
  /** --timeout, in ms. */
  timeout?: number;
}

/** How to reach SSH destinations, and when to give one up (every command that has destinations). */
export function addSshOptions(command: Command): Command {
  return command
    .addOption(
      new Option('--timeout <seconds>', "give up a destination that sends nothing for this long while it is waited for (rsync's --timeout; 0: never)")
        .argParser(seconds(0, 86_400))
        .default(60_000, '60'),
    )
    .addOption(
      new Option('--contimeout <seconds>', "give up reaching a host after this long (0: never; default: the ssh config's ConnectTimeout, else 15, for the connection and SSH handshake, and 30 for each step of starting its agent)").argParser(
        seconds(0, 86_400),
      ),
    )
    .option('-p, --port <port>', 'ssh port', sshPort)
    .option('-i, --identity <file>', 'ssh identity (private key) file', identityFile)
    .option('-F, --config <file>', 'ssh config file (default ~/.ssh/config)')
    .option('-J, --jump <hosts>', "reach SSH destinations through these jump hosts, as ssh -J ([user@]host[:port], comma-separated; 'none': directly, ignoring the config's ProxyJump and ProxyCommand)")
    .addOption(
      new Option('-e, --rsh <command>', "reach SSH destinations by running this command (as rsync's -e: `ssh`, `ssh -p 2222`, ...) instead of the built-in SSH client; -p, -i, -F, -J and --accept-new-host-keys go to it as ssh's options").argParser(
        remoteShell,
      ),
    )
    .option('--accept-new-host-keys', 'learn unknown host keys into known_hosts instead of refusing them (as the ssh config\'s StrictHostKeyChecking accept-new, which is honoured too)', false)
    .option('--remote-command <cmd>', 'command that starts the agent on the remote (default: deltacast agent, or an uploaded bundle)');
}

const portNumber = integer(1, 65535);

/**
 * -p's value: the ssh port, as ssh's -p. rsync's -p (--perms) is always on in deltacast; letters
 * after it (`-rlptD`) get a hint.
 */
function sshPort(value: string): number {
  try {
    return portNumber(value);
  } catch (error) {
    if (/^[a-zA-Z]+$/.test(value)) {
      throw new InvalidArgumentError(`${(error as Error).message} (-p is the ssh port here, as ssh's; rsync's -p, --perms, is always on: leave it out, as in -rltD or -a)`);
    }
    throw error;
  }
}

/**
 * -i's value: the ssh identity file, as ssh's -i. rsync's -i (--itemize-changes) written in a
 * cluster (`-ai SRC DEST`) would take the source for a key: a directory gets a hint.
 */
function identityFile(value: string): string {
  if (statSync(value, { throwIfNoEntry: false })?.isDirectory()) {
    throw new InvalidArgumentError(`${value} is a directory, not a key (-i is the ssh identity file here, as ssh's; for rsync's -i write --itemize-changes)`);
  }
  return value;
}

/** --chown's USER, USER:GROUP, USER: or :GROUP (a name or a number each). */
export function chownValue(value: string): { user?: string; group?: string } {
  const match = /^([^:\s]*)(?::([^:\s]*))?$/.exec(value);
  if (!match || (match[1] === '' && !match[2])) throw new InvalidArgumentError(`not USER, USER:GROUP or :GROUP: ${value}`);
  return { ...(match[1] ? { user: match[1] } : {}), ...(match[2] ? { group: match[2] } : {}) };
}

/** A --chmod value, checked here so that a malformed one is a usage error. */
function checkedChmod(mode: string): string {
  try {
    parseChmod(mode);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
  return mode;
}

/** -e's command, checked here so that an unterminated quote is a usage error, not a failed connection. */
function remoteShell(command: string): string {
  try {
    splitCommand(command);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
  return command;
}

export function sshOptions(opts: SshFlags) {
  return {
    port: opts.port,
    identityFile: opts.identity,
    configFile: opts.config,
    // Without the flag, the config's StrictHostKeyChecking decides (accept-new learns too).
    acceptNewHostKeys: opts.acceptNewHostKeys || undefined,
    remoteCommand: opts.remoteCommand,
    jumpHosts: opts.jump,
    rsh: opts.rsh,
    connectTimeoutMs: opts.contimeout,
  };
}

export interface TransferFlags extends SshFlags {
  checksum: boolean;
  compress: boolean;
  owner: boolean;
  numericIds: boolean;
  hardLinks: boolean;
  linkDest?: string[];
  fuzzy: boolean;
  copyDest?: string[];
  compareDest?: string[];
  partial: boolean;
  json: boolean;
  concurrency?: number;
  parallel: number;
  sequential: boolean;
  atomic: 'file' | 'tree';
  allOrNone: boolean;
  bestEffort: boolean;
  beforeCommit?: string;
  afterCommit?: string;
  release?: boolean;
  keep?: number;
  maxDelete?: number;
  update: boolean;
  ignoreExisting: boolean;
  existing: boolean;
  sizeOnly: boolean;
  ignoreTimes: boolean;
  removeSourceFiles: boolean;
  maxSize?: number;
  minSize?: number;
  deleteExcluded: boolean;
  deleteAfter: boolean;
  /** --chown, split. */
  chown?: { user?: string; group?: string };
  backup: boolean;
  backupDir?: string;
  suffix?: string;
  /** -x given once (1) or twice (2). */
  oneFileSystem: number;
  copyLinks: boolean;
  copyUnsafeLinks: boolean;
  safeLinks: boolean;
  /** --chmod values, in order (rsync appends each to the last). */
  chmod?: string[];
  /** --bwlimit, in bytes per second. */
  bwlimit?: number;
}

/** Filters, comparison, ssh and concurrency options; filter rules are collected into `rules` in order. */
export function addTransferOptions(command: Command, rules: FilterRule[]): Command {
  const collect = (action: FilterRule['action']) => (pattern: string) => {
    rules.push({ action, pattern });
    return rules;
  };
  command
    .option('-c, --checksum', 'compare file contents (SHA-256) instead of size and mtime', false)
    .option('--size-only', 'a file of the same size is unchanged whatever its mtime (only its attributes are set)', false)
    .option('--remove-source-files', "remove the source's files and symlinks once they are at the destination (sent, or found there unchanged), as rsync's: a move (one destination only)", false)
    .option('-I, --ignore-times', "no quick check: send every file the destination has as a delta, even of the same size and mtime, as rsync's -I", false)
    .option('-u, --update', 'leave files and symlinks alone where the destination has a newer one', false)
    .option('--ignore-existing', 'send only files and symlinks the destination does not have at all', false)
    .option('--existing', 'create nothing new at the destination (no file, symlink or directory); update what is there', false)
    .addOption(new Option('--max-size <size>', "send no regular file larger than SIZE (bytes, or e.g. 500K, 1.5M, 1G-1, as rsync's)").argParser(sizeLimit))
    .addOption(new Option('--min-size <size>', 'send no regular file smaller than SIZE').argParser(sizeLimit))
    .addOption(
      new Option('--chown <user:group>', "give everything written this owner and/or group (USER, USER:GROUP or :GROUP; names resolved on each destination, which must run as root), as rsync's --chown").argParser(
        chownValue,
      ),
    )
    .option('-b, --backup', "keep what is replaced or deleted at the destination, as PATH~ (rsync's -b)", false)
    .addOption(new Option('--backup-dir <dir>', 'keep backups under this directory inside the destination root instead, as DIR/PATH (implies --backup)').implies({ backup: true }))
    .option('--suffix <suffix>', 'backup suffix (default ~, or none with --backup-dir)')
    .option('-x, --one-file-system', "don't cross file systems: a mount point is sent as an empty directory and what the destination has under it is kept (-xx: left out)", (_: string, n: number) => n + 1, 0)
    .option('-L, --copy-links', 'send what symlinks point to (files, directories) instead of the links', false)
    .option('--copy-unsafe-links', 'the same for symlinks that point outside the source tree only', false)
    .option('--safe-links', 'leave out symlinks that point outside the source tree', false)
    .option(
      '--chmod <mode>',
      "change the modes sent, as rsync's --chmod (chmod(1) syntax; D or F before a clause: directories or files only; e.g. Du=rwx,Dgo=rx,Fu=rw,Fgo=r) (repeatable)",
      (mode: string, previous: string[] | undefined) => [...(previous ?? []), checkedChmod(mode)],
    )
    .option('--delete-excluded', 'also delete what the filters exclude at the destination (implies deletions on)', false)
    .option('--delete-after', 'delete extraneous entries once everything else arrived, not before (implies deletions on), as rsync\'s', false)
    .addOption(new Option('--delete-delay', "rsync's --delete-delay: as --delete-after").hideHelp().implies({ deleteAfter: true }))
    .addOption(new Option('--delete-before', "rsync's --delete-before: deletions on, made before the transfer (deltacast's way)").hideHelp().implies({ delete: true }))
    .addOption(new Option('--delete-during', "rsync's --delete-during: as --delete-before here").hideHelp().implies({ delete: true }))
    .option('-z, --compress', 'compress file data on the wire', false)
    .option('-o, --owner', 'preserve owner and group (when the destination agent runs as root), by name as rsync does: each destination maps the source\'s user and group names to its own ids', false)
    .option(
      '--link-dest <dir>',
      "hard-link a new file from DIR on the destination's host (relative to the destination) where DIR holds it as the source has it, instead of sending it, as rsync's --link-dest (snapshot backups; repeatable, the first match wins)",
      (dir: string, previous: string[] | undefined) => [...(previous ?? []), dir],
    )
    .option('-y, --fuzzy', "send a new file as a delta against a file of its directory at the destination (the same size and mtime, else a close name): a renamed file, as rsync's --fuzzy", false)
    .option(
      '--copy-dest <dir>',
      "as --link-dest, but copy the match from DIR (a local copy on the destination's host) instead of linking it, as rsync's --copy-dest",
      (dir: string, previous: string[] | undefined) => [...(previous ?? []), dir],
    )
    .option(
      '--compare-dest <dir>',
      "leave out a new file that DIR on the destination's host holds as the source has it, as rsync's --compare-dest (a differential backup)",
      (dir: string, previous: string[] | undefined) => [...(previous ?? []), dir],
    )
    .option('-H, --hard-links', 'keep hard links: names of one file in the source are one file at each destination (not with --atomic tree, --all-or-none or --release)', false)
    .option('--numeric-ids', 'with --owner: keep the source\'s uid and gid numbers, not mapped by name', false)
    .addOption(new Option('-g, --group', "rsync's -g: as --owner (owner and group go together)").hideHelp().implies({ owner: true }))
    .option('--partial', 'keep interrupted new files to resume from on the next run', false)
    .addOption(new Option('-P', "rsync's -P: --partial (progress is shown on a terminal in any case)").implies({ partial: true }))
    .option('--exclude <pattern>', 'exclude paths matching a gitignore-style pattern (repeatable)', collect('exclude'))
    .option('--include <pattern>', 'include paths matching a pattern, overriding later excludes (repeatable)', collect('include'))
    .option('--exclude-from <file>', 'read exclude patterns from a file, in place among the other rules (repeatable)', (file: string) => {
      // Read now, so the file's rules take their place in the order given, as rsync's do.
      rules.push(...parseFilterFile(readFileSync(file, 'utf8')));
      return rules;
    })
    .option(
      '--filter <rule>',
      "an rsync filter rule, in place among the others: '- PATTERN', '+ PATTERN', '. FILE' (its rules now), or ': NAME' to read NAME in every source directory (':- .gitignore': each directory's .gitignore, read as git does) (repeatable)",
      (text: string) => {
        try {
          rules.push(...parseFilterRule(text));
        } catch (error) {
          throw new InvalidArgumentError((error as Error).message);
        }
        return rules;
      },
    )
    .addOption(
      new Option('--max-delete <num>', 'with deletions on: delete at most NUM extraneous entries per destination per run (0: none); the rest are skipped and reported (exit 25)').argParser(
        integer(0, Number.MAX_SAFE_INTEGER),
      ),
    )
    .option('--json', 'write NDJSON events to stdout instead of text', false)
    .addOption(
      new Option('--bwlimit <rate>', "pace the data sent to each destination to this rate, as rsync's --bwlimit (KiB/s, or e.g. 500K, 1.5M, 10MB; 0: no limit)").argParser(
        transferRate,
      ),
    );
  // rsync's archive flags, so that `-avz` and `-rlptD` work as typed: what they ask for is what
  // deltacast always does (files, directories, symlinks as links, modes, times), so they change
  // nothing. Owners are kept with -o (or --owner), whoever runs it.
  command.addOption(new Option('-a, --archive', "rsync's archive mode: what deltacast always does (-rlptD); owners need -o").default(false));
  for (const [flags, what] of [
    ['-r, --recursive', 'recursion'],
    ['-l, --links', 'symlinks copied as links'],
    ['--perms', 'modes'],
    ['-t, --times', 'modification times'],
    ['-D', 'devices and specials (those are skipped and reported)'],
  ] as const) {
    command.addOption(new Option(flags, `rsync's ${flags.split(',')[0]}: accepted, changes nothing (${what})`).hideHelp());
  }
  return addSshOptions(command)
    .addOption(new Option('--concurrency <n>', 'files (or batches of small files) in flight at once (together at most 64 MiB but for one larger file)').argParser(integer(1, 256)).default(32))
    .addOption(new Option('--parallel <n>', 'with several destinations: how many are written at once').argParser(integer(1, 1024)).default(8))
    .option('--sequential', 'with several destinations: one at a time (same as --parallel 1)', false)
    .addOption(
      new Option('--atomic <mode>', 'file: each file renamed into place when verified; tree: stage everything, then apply it in one quick phase')
        .choices(['file', 'tree'])
        .default('file'),
    )
    .option('--all-or-none', 'commit only if every destination staged everything, else leave all as they were (implies --atomic tree)', false)
    .option('--best-effort', 'with --atomic tree: commit each destination that staged everything (the default)', false)
    .option('--release', 'build releases/ID on each destination (hard links from the current release) and switch `current` to it at the end')
    .addOption(new Option('--keep <n>', 'with --release: keep this many releases (the newest; never the current one)').argParser(integer(1, 100_000)))
    .option('--before-commit <cmd>', 'run on each destination (in its root) before its changes go live; failing keeps it unchanged')
    .option('--after-commit <cmd>', 'run on each destination after its changes went live');
}

/**
 * A source that is not here but reads as a remote one, where the command cannot take it: a usage
 * error that says so, not a missing file. `pulls`: the command pulls from host:path sources
 * (sync, commands/pull.ts), so only forms no host:path reading fits (host::module, rsync's daemon
 * syntax) are refused; otherwise (watch) every remote-looking source is.
 */
export function checkLocalSource(source: string, command: { pulls: boolean }): void {
  if (existsSync(source)) return;
  let remote = false;
  try {
    remote = parseDestination(source).kind === 'ssh';
  } catch {
    throw new UsageError(`${source}: neither a local path nor host:path (rsync daemon modules, host::module, are not supported)`);
  }
  if (remote && !command.pulls) {
    throw new UsageError(`${source}: the source must be a local path: this command follows a local tree (run it on the host that has the files)`);
  }
}

export function checkTransferFlags(opts: TransferFlags): void {
  if (opts.allOrNone && opts.bestEffort) throw new UsageError('--all-or-none and --best-effort exclude each other');
  if (opts.keep !== undefined && !opts.release) throw new UsageError('--keep goes with --release');
  if (opts.sizeOnly && opts.checksum) throw new UsageError('--size-only and --checksum exclude each other');
  if (opts.suffix !== undefined && !opts.backup) throw new UsageError('--suffix goes with --backup or --backup-dir');
  if (opts.backup && (opts.release || opts.allOrNone || opts.atomic === 'tree')) {
    throw new UsageError('--backup goes with --atomic file: staged commits and releases keep the old tree their own way');
  }
  const basis = [opts.linkDest && '--link-dest', opts.copyDest && '--copy-dest', opts.compareDest && '--compare-dest'].filter((flag): flag is string => Boolean(flag));
  if (basis.length > 1) throw new UsageError('--link-dest, --copy-dest and --compare-dest exclude each other');
  if ((opts.linkDest || opts.copyDest) && (opts.release || opts.allOrNone || opts.atomic === 'tree')) {
    throw new UsageError(`${basis[0]} goes with --atomic file: a staged file is not at its path until the commit, for a link or copy to be made there`);
  }
  if ((opts.linkDest ?? opts.copyDest ?? opts.compareDest ?? []).length > MAX_LINK_DEST_DIRS) throw new UsageError(`at most ${MAX_LINK_DEST_DIRS} ${basis[0]} directories`);
  if (opts.hardLinks && (opts.release || opts.allOrNone || opts.atomic === 'tree')) {
    throw new UsageError('-H goes with --atomic file: a staged file is not at its path until the commit, for a link to find it');
  }
  if (opts.backup) {
    try {
      checkBackup({ dir: opts.backupDir, suffix: opts.suffix });
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
  }
  if ([opts.copyLinks, opts.copyUnsafeLinks, opts.safeLinks].filter(Boolean).length > 1) {
    throw new UsageError('-L, --copy-unsafe-links and --safe-links exclude each other');
  }
}

/** The library options of one transfer (sync and fan-out alike). */
export function transferOptions(rules: FilterRule[], opts: TransferFlags) {
  return {
    checksum: opts.checksum,
    sizeOnly: opts.sizeOnly,
    ignoreTimes: opts.ignoreTimes,
    removeSourceFiles: opts.removeSourceFiles,
    update: opts.update,
    ignoreExisting: opts.ignoreExisting,
    existing: opts.existing,
    maxSize: opts.maxSize,
    minSize: opts.minSize,
    deleteExcluded: opts.deleteExcluded,
    deleteAfter: opts.deleteAfter,
    chmod: opts.chmod?.join(','),
    oneFileSystem: opts.oneFileSystem,
    backup: opts.backup ? { dir: opts.backupDir, suffix: opts.suffix } : undefined,
    chown: opts.chown,
    links: opts.copyLinks ? ('copy' as const) : opts.copyUnsafeLinks ? ('copy-unsafe' as const) : opts.safeLinks ? ('safe' as const) : undefined,
    compress: opts.compress,
    owner: opts.owner,
    numericIds: opts.numericIds,
    hardLinks: opts.hardLinks,
    linkDest: opts.linkDest,
    copyDest: opts.copyDest,
    fuzzy: opts.fuzzy,
    compareDest: opts.compareDest,
    partial: opts.partial,
    filters: rules,
    concurrency: opts.concurrency,
    maxDelete: opts.maxDelete,
    idleTimeoutMs: opts.timeout,
    bwlimit: opts.bwlimit,
    ssh: sshOptions(opts),
  };
}

/** The fan-out's strategy and commit options. */
export function fanoutOptions(opts: TransferFlags) {
  return {
    parallel: opts.sequential ? 1 : opts.parallel,
    atomic: opts.allOrNone ? ('tree' as const) : opts.atomic,
    commit: opts.allOrNone ? ('all-or-none' as const) : opts.atomic === 'tree' ? ('best-effort' as const) : undefined,
    beforeCommit: opts.beforeCommit,
    afterCommit: opts.afterCommit,
    release: opts.release ? { keep: opts.keep } : undefined,
  };
}
