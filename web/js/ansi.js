// A plan's coloured output (ANSI SGR codes, e.g. Ansible with ANSIBLE_FORCE_COLOR) as styled text. The
// vendored ansi_up parses the codes; we take its styled fragments, never its HTML: every fragment becomes a
// text node in a span with classes (app.css), so nothing a plan prints can become markup, and the CSP's
// style-src 'self' holds (true colours go through the CSSOM, which it allows).
import { AnsiUp } from './vendor/ansi_up.js';

/** Collects ansi_up's fragments instead of the HTML it would make of them. */
class Fragments extends AnsiUp {
  constructor() {
    super();
    this.use_classes = true;
    this.url_allowlist = {};
    this.out = [];
  }
  transform_to_html(f) {
    if (f.text.length === 0) return '';
    const classes = [];
    let color = null;
    let background = null;
    if (f.bold) classes.push('ansi-bold');
    if (f.faint) classes.push('ansi-faint');
    if (f.italic) classes.push('ansi-italic');
    if (f.underline) classes.push('ansi-underline');
    if (f.fg) {
      if (f.fg.class_name === 'truecolor') color = `rgb(${f.fg.rgb.join(',')})`;
      else classes.push(`${f.fg.class_name}-fg`);
    }
    if (f.bg) {
      if (f.bg.class_name === 'truecolor') background = `rgb(${f.bg.rgb.join(',')})`;
      else classes.push(`${f.bg.class_name}-bg`);
    }
    this.out.push({ text: f.text, classes, color, background });
    return '';
  }
  process_hyperlink(pkt) {
    // Terminal hyperlinks show as their text only: a plan's output never becomes a link.
    if (pkt.text) this.out.push({ text: pkt.text, classes: [], color: null, background: null });
    return '';
  }
}

/** One line of output as styled fragments: {text, classes, color, background}. Pure (no DOM). */
export function ansiFragments(line) {
  const p = new Fragments();
  p.ansi_to_html(line);
  return p.out;
}

/** One line as a span of text nodes (in styled spans); `doc` is the document to build in. */
export function ansiLine(line, doc = document) {
  const el = doc.createElement('span');
  el.className = 'log-line';
  for (const f of ansiFragments(line)) {
    if (f.classes.length === 0 && !f.color && !f.background) {
      el.appendChild(doc.createTextNode(f.text));
      continue;
    }
    const s = doc.createElement('span');
    s.className = f.classes.join(' ');
    if (f.color) s.style.color = f.color;
    if (f.background) s.style.backgroundColor = f.background;
    s.textContent = f.text;
    el.appendChild(s);
  }
  el.appendChild(doc.createTextNode('\n'));
  return el;
}
