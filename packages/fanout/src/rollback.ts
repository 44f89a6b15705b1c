/**
 * `deltacast rollback DEST...`: switch every destination's `current` back to the same earlier release.
 * The target is the release before the current one (or the one named), and it must be the same id on
 * every destination: a destination that cannot be reached, or lacks that release, is reported — and
 * with all-or-none (the default) no destination is switched then.
 */
import { AgentClient, openDestination, recordFailure, emptySummary, type DestinationOptions, type OpenedDestination, type SyncSummary } from '@deltacast/transport';

export interface RollbackOptions extends DestinationOptions {
  destinations: string[];
  /** Release to switch to; default: the one before the current release (the same on every destination). */
  to?: string;
  /** Switch the destinations that can be switched even if others cannot (default: all or none). */
  bestEffort?: boolean;
  /** A destination whose agent sends nothing for this long while a request waits is given up (TIMEOUT). Default 60 s; 0 disables. */
  idleTimeoutMs?: number;
}

export interface RollbackResult {
  ok: boolean;
  /** The release switched to, when one could be chosen. */
  release: string | undefined;
  destinations: { destination: string; ok: boolean; switched: boolean; from?: string; summary: SyncSummary }[];
}

export async function rollback(options: RollbackOptions): Promise<RollbackResult> {
  const sessions = new Map<string, { opened: OpenedDestination; client: AgentClient; releases: string[]; current: string | undefined }>();
  const summaries = new Map(options.destinations.map((d) => [d, emptySummary(false)]));
  await Promise.all(
    options.destinations.map(async (name) => {
      try {
        const opened = await openDestination(name, options);
        try {
          const client = await AgentClient.connect(opened.streams, { root: opened.root, lock: true, idleTimeoutMs: options.idleTimeoutMs });
          const { releases, current } = await client.releaseList();
          sessions.set(name, { opened, client, releases, current });
        } catch (error) {
          await opened.close();
          throw error;
        }
      } catch (error) {
        recordFailure(summaries.get(name)!, name, '', error);
      }
    }),
  );

  // One target for all: the named release, or the newest release older than every current one.
  let target = options.to;
  if (target === undefined) {
    const candidates = [...sessions.values()].map((s) => (s.current === undefined ? undefined : s.releases.filter((r) => r < s.current!).pop()));
    const distinct = new Set(candidates);
    target = distinct.size === 1 ? candidates[0] : undefined;
    if (target === undefined) {
      for (const [name] of sessions) {
        recordFailure(summaries.get(name)!, name, '', Object.assign(new Error('no earlier release common to every destination'), { code: 'NO_RELEASE' }));
      }
    }
  }
  for (const [name, s] of sessions) {
    if (target !== undefined && !s.releases.includes(target)) {
      recordFailure(summaries.get(name)!, name, '', Object.assign(new Error(`no release ${target} here`), { code: 'NO_RELEASE' }));
    }
  }
  const allReady = [...summaries.values()].every((s) => s.ok);
  const switched = new Set<string>();
  if (target !== undefined && (allReady || options.bestEffort)) {
    await Promise.all(
      [...sessions].map(async ([name, s]) => {
        if (!summaries.get(name)!.ok) return;
        try {
          await s.client.releaseSwitch(target!);
          switched.add(name);
        } catch (error) {
          recordFailure(summaries.get(name)!, name, '', error);
        }
      }),
    );
  } else if (target !== undefined) {
    for (const [name] of sessions) {
      const summary = summaries.get(name)!;
      if (summary.ok) recordFailure(summary, name, '', Object.assign(new Error('not switched: another destination cannot be (all-or-none)'), { code: 'ABORTED' }));
    }
  }
  await Promise.all([...sessions.values()].map((s) => s.client.close()));
  await Promise.all([...sessions.values()].map((s) => s.opened.close()));
  const destinations = options.destinations.map((name) => ({
    destination: name,
    ok: summaries.get(name)!.ok,
    switched: switched.has(name),
    from: sessions.get(name)?.current,
    summary: summaries.get(name)!,
  }));
  return { ok: destinations.every((d) => d.ok), release: target, destinations };
}
