import type { Check } from '../types.js';
import { cacheChecks } from './cache.js';
import { dataChecks } from './data.js';
import { errorChecks } from './errors.js';
import { framingChecks } from './framing.js';
import { headerChecks } from './headers.js';
import { jhvChecks } from './jhv.js';
import { jpxChecks } from './jpx.js';
import { sessionChecks } from './sessions.js';
import { syntaxChecks } from './syntax.js';
import { windowChecks } from './window.js';

/** Every check, in report order (by group). */
export const CHECKS: readonly Check[] = [
  ...syntaxChecks,
  ...headerChecks,
  ...framingChecks,
  ...dataChecks,
  ...windowChecks,
  ...cacheChecks,
  ...sessionChecks,
  ...jpxChecks,
  ...errorChecks,
  ...jhvChecks,
];
