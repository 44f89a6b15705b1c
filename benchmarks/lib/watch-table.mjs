/**
 * The compare-watch table, for the script's own output and for RESULTS.md (render-results.mjs):
 * one header and one row per tool, then the deltacast / lsyncd ratios when both ran.
 */
const seconds = (ms) => (ms / 1000).toFixed(3);
const ratio = (x) => (x === null || x === undefined ? '-' : `${x.toFixed(2)}x`);

/** `tools`: the report's per-tool results; `ratios`: its deltacast / lsyncd ratios or null; `burst`: files in the burst. */
export function watchTable(tools, ratios, burst) {
  const header = ['tool', 'latency median s', 'p95 s', 'max s', 'first destination median s', `burst of ${burst} s`, 'active CPU s', 'idle CPU ms/min', 'idle ticks ms/min', 'server idle CPU ms/min'];
  const rows = tools.map((t) => [
    t.tool,
    seconds(t.latency.medianMs),
    seconds(t.latency.p95Ms),
    seconds(t.latency.maxMs),
    seconds(t.firstArrival.medianMs),
    t.burst ? seconds(t.burst.allLiveMs) : '-',
    (t.active.cpuMs / 1000).toFixed(2),
    t.idle.runtimeMsPerMinute.toFixed(2),
    t.idle.cpuMsPerMinute.toFixed(0),
    t.idle.serverRuntimeMsPerMinute.toFixed(2),
  ]);
  if (ratios) rows.push(['deltacast / lsyncd', ratio(ratios.latencyMedian), ratio(ratios.latencyP95), '', '', ratio(ratios.burst), '', ratio(ratios.idleCpu), '', '']);
  return { header, rows };
}
