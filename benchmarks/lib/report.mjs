/** The fields every benchmark's --json report starts with: what ran, when, under what load, on which Node. */
export function reportHeader(benchmark, loadAtStart) {
  return {
    benchmark,
    command: ['node', `${benchmark}.mjs`, ...process.argv.slice(2)].join(' '),
    date: new Date().toISOString(),
    loadAverage: loadAtStart,
  };
}
