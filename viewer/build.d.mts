/** Builds the viewer into `outDir` (default dist/viewer): see build.mjs. */
export function buildViewer(outDir?: string): Promise<{ dir: string; files: Record<string, number> }>;
