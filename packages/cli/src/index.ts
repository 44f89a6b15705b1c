export { main } from './main.js';
export type { MainIO } from './io.js';
