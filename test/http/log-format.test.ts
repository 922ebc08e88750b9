// The server log's two forms: one JSON line per record (for shippers) and a pretty one for a terminal,
// both with the token redaction applied before formatting.
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, defaultLogFormat } from '../../src/server.ts';

function capture(format: 'json' | 'pretty') {
  const out = new PassThrough();
  let text = '';
  out.on('data', (b: Buffer) => (text += b.toString()));
  const log = createLogger(format, out, {});
  return { log, text: () => text };
}

describe('server log format', () => {
  it('pretty: a readable line with the message and fields, no JSON, tokens redacted, no colour off a tty', async () => {
    const { log, text } = capture('pretty');
    log.info({ deployment: 'dep_1', headers: { authorization: 'Bearer s3cret' } }, 'state change');
    await new Promise((r) => setImmediate(r));
    const out = text();
    expect(out).toContain('INFO');
    expect(out).toContain('state change');
    expect(out).toContain('dep_1');
    expect(out).not.toContain('s3cret');
    expect(out).toContain('[redacted]');
    expect(out).not.toContain('\x1b[');
    expect(() => JSON.parse(out.split('\n')[0])).toThrow();
  });

  it('json: one parseable line per record, tokens redacted', async () => {
    const { log, text } = capture('json');
    log.info({ authorization: 'Bearer s3cret' }, 'listening');
    await new Promise((r) => setImmediate(r));
    const line = JSON.parse(text().trim());
    expect(line).toMatchObject({ msg: 'listening', authorization: '[redacted]', level: 30 });
  });

  it('defaults: pretty only on a terminal outside CI; LIFELINE_LOG_FORMAT wins', () => {
    expect(defaultLogFormat({}, true)).toBe('pretty');
    expect(defaultLogFormat({}, false)).toBe('json');
    expect(defaultLogFormat({ CI: 'true' }, true)).toBe('json');
    expect(defaultLogFormat({ LIFELINE_LOG_FORMAT: 'json' }, true)).toBe('json');
    expect(defaultLogFormat({ LIFELINE_LOG_FORMAT: 'pretty' }, false)).toBe('pretty');
  });
});
