import { describe, expect, it } from 'vitest';
import { cutLine, makeRedactor, maskParams } from '../../src/runner/redact.ts';

describe('makeRedactor', () => {
  it('masks every occurrence, longest secret first', () => {
    const r = makeRedactor(['abc', 'abcdef', '']);
    expect(r('x abcdef y abc z abcabc')).toBe('x *** y *** z ******');
  });

  it('treats regex characters literally and masks the JSON-escaped form', () => {
    const secret = 'p.a$s"w\\rd*';
    const r = makeRedactor([secret]);
    expect(r(`token=${secret}`)).toBe('token=***');
    expect(r(JSON.stringify({ token: secret }))).toBe('{"token":"***"}');
    expect(r('p-a$s"w\\rd*')).toBe('p-a$s"w\\rd*');
  });

  it('with no secrets returns text unchanged', () => {
    expect(makeRedactor([])('hello')).toBe('hello');
    expect(makeRedactor([''])('hello')).toBe('hello');
  });

  it('masks before cutting, so a secret across the cut leaves no prefix', () => {
    const secret = 'S3CRET-VALUE';
    const line = 'a'.repeat(4090) + secret;
    const out = cutLine(makeRedactor([secret])(line));
    expect(out).toBe('a'.repeat(4090) + '***');
    expect(out).not.toContain('S3C');
  });
});

describe('cutLine', () => {
  it('counts code points and never splits a surrogate pair', () => {
    expect(cutLine('short')).toBe('short');
    expect(cutLine('x'.repeat(5000))).toHaveLength(4096);
    const emoji = '😀'.repeat(5000);
    const cut = cutLine(emoji);
    expect([...cut]).toHaveLength(4096);
    expect(cut).toBe('😀'.repeat(4096));
    expect(cutLine('a😀b', 2)).toBe('a😀');
    expect(cutLine('a😀b', 1)).toBe('a');
  });
});

describe('maskParams', () => {
  it('masks only the named top-level keys and copies', () => {
    const params = { user: 'u', password: 'p', nested: { password: 'n' } };
    const out = maskParams(params, ['password', 'absent']);
    expect(out).toEqual({ user: 'u', password: '***', nested: { password: 'n' } });
    expect(params.password).toBe('p');
  });

  it('keeps a "__proto__" key a plain key', () => {
    const params = JSON.parse('{"__proto__": "secret", "a": 1}') as Record<string, unknown>;
    const out = maskParams(params, ['__proto__']);
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(out, '__proto__')?.value).toBe('***');
  });
});
