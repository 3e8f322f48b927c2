// Types of failpoints.mjs, for lib/failpoint.test.ts.
export declare function failpointNames(root: string): string[];
export declare function checkFailpoints(root: string, release: string[], test?: string[]): string[];
