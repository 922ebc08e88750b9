// web/js/ansi.js: a plan's ANSI colours become classes on text, and nothing a plan prints becomes markup.
import { describe, expect, it } from 'vitest';
import { importWeb } from './web-module.ts';

interface Fragment {
  text: string;
  classes: string[];
  color: string | null;
  background: string | null;
}
const { ansiFragments } = await importWeb<{ ansiFragments(line: string): Fragment[] }>('ansi.js');

describe('ansiFragments', () => {
  it("turns Ansible's colour codes into classes, with no escape code left in the text", () => {
    expect(ansiFragments('\x1b[0;32mok: [localhost]\x1b[0m')).toEqual([
      { text: 'ok: [localhost]', classes: ['ansi-green-fg'], color: null, background: null },
    ]);
    const f = ansiFragments('\x1b[1;33mchanged\x1b[0m plain \x1b[4;41mbad\x1b[0m');
    expect(f.map((x) => x.text).join('')).toBe('changed plain bad');
    expect(f[0].classes).toEqual(['ansi-bold', 'ansi-yellow-fg']);
    expect(f[1].classes).toEqual([]);
    expect(f[2].classes).toEqual(['ansi-underline', 'ansi-red-bg']);
  });

  it('keeps a hostile line as text: markup is not parsed, escaped or turned into elements', () => {
    const line = '\x1b[1;31m<img src=x onerror=alert(1)>\x1b[0m <script>alert(2)</script>';
    const f = ansiFragments(line);
    expect(f.map((x) => x.text).join('')).toBe('<img src=x onerror=alert(1)> <script>alert(2)</script>');
    expect(f[0].classes).toEqual(['ansi-bold', 'ansi-red-fg']);
    for (const x of f) {
      expect(x.text).not.toMatch(/\x1b/);
      for (const c of x.classes) expect(c).toMatch(/^ansi-[a-z-]+$/);
    }
  });

  it('true colours are values for the CSSOM; terminal hyperlinks are only their text', () => {
    const [tc] = ansiFragments('\x1b[38;2;10;20;30mtc\x1b[0m');
    expect(tc).toEqual({ text: 'tc', classes: [], color: 'rgb(10,20,30)', background: null });
    const link = ansiFragments('\x1b]8;;javascript:alert(1)\x1b\\click\x1b]8;;\x1b\\');
    expect(link.map((x) => x.text).join('')).toBe('click');
  });
});
