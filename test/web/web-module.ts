// What the Node tests of the dashboard share: loading a module of web/js (plain browser JavaScript with no
// types, so the caller describes it with an interface) and the shape of a stream event.

/** Imports web/js/<relPath>; by URL, so TypeScript takes the caller's interface for the module. */
export async function importWeb<T>(relPath: string): Promise<T> {
  return (await import(new URL(`../../web/js/${relPath}`, import.meta.url).href)) as T;
}

/** An event as the streams deliver it (SPEC §3). */
export interface StreamEvent {
  seq: number;
  type: string;
  at: string;
  deployment_id?: string;
  attempt_id?: string | null;
  data?: Record<string, unknown>;
}
