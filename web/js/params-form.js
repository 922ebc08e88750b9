// Params input from a plan's JSON Schema: one field per simple property (integer, number, string, boolean,
// enum), or a JSON text area when the schema is not that simple or the user prefers JSON.
import { h, nextId } from './dom.js';

function simpleProps(schema) {
  const props = schema && typeof schema === 'object' ? schema.properties : null;
  if (!props || typeof props !== 'object') return null;
  const out = [];
  for (const [name, s] of Object.entries(props)) {
    if (!s || typeof s !== 'object') return null;
    const type = Array.isArray(s.type) ? s.type.find((t) => t !== 'null') : s.type;
    if (Array.isArray(s.enum) && s.enum.every((v) => ['string', 'number'].includes(typeof v))) {
      out.push({ name, kind: 'enum', s });
    } else if (['integer', 'number', 'string', 'boolean'].includes(type)) out.push({ name, kind: type, s });
    else return null; // objects, arrays, combinators: JSON only
  }
  return out;
}

/** A text area for params as JSON (here and in the deploy dialog's override). */
export function jsonTextarea(id, helpId, rows) {
  return h('textarea', {
    id,
    class: 'mono',
    rows,
    spellcheck: 'false',
    'aria-describedby': helpId,
    placeholder: '{}',
  });
}

/** Params typed as JSON: an object, or an Error whose message says what is wrong. */
export function parseParamsJson(text) {
  let v;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`Params: not valid JSON (${e.message})`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('Params: must be a JSON object');
  return v;
}

/**
 * Returns {el, read(), setErrors(errors)}. read() gives the params object or throws an Error whose message
 * says which field is wrong.
 */
export function paramsEditor(schema) {
  const props = simpleProps(schema);
  const required = new Set(Array.isArray(schema?.required) ? schema.required : []);
  const fields = new Map();
  const jsonId = nextId('params-json');
  const jsonHelpId = nextId('params-json-help');
  const json = jsonTextarea(jsonId, jsonHelpId, 4);
  const jsonBox = h(
    'div',
    { class: 'field' },
    h('label', { for: jsonId }, 'Params (JSON)'),
    json,
    h(
      'p',
      { id: jsonHelpId, class: 'help' },
      'A JSON object, checked against the plan’s params schema by the server.',
    ),
  );

  let useJson = !props || props.length === 0;
  const fieldBox = h('div', { class: 'param-fields' });
  if (props) {
    for (const p of props) {
      const id = nextId(`param-${p.name}`);
      const helpId = p.s.description ? nextId('help') : null;
      const errId = nextId('err');
      const req = required.has(p.name);
      let input;
      if (p.kind === 'boolean') {
        input = h('input', { id, type: 'checkbox', name: p.name, checked: p.s.default === true });
      } else if (p.kind === 'enum') {
        input = h(
          'select',
          { id, name: p.name, required: req },
          req ? null : h('option', { value: '' }, '—'),
          p.s.enum.map((v) => h('option', { value: String(v), selected: v === p.s.default }, String(v))),
        );
      } else {
        const numeric = p.kind === 'integer' || p.kind === 'number';
        input = h('input', {
          id,
          name: p.name,
          type: numeric ? 'number' : p.s.writeOnly ? 'password' : 'text',
          inputmode: p.kind === 'integer' ? 'numeric' : undefined,
          step: p.kind === 'integer' ? '1' : numeric ? 'any' : undefined,
          min: p.s.minimum,
          max: p.s.maximum,
          autocomplete: p.s.writeOnly ? 'off' : undefined,
          placeholder: p.s.default !== undefined ? String(p.s.default) : undefined,
          required: req,
        });
      }
      input.setAttribute('aria-describedby', [helpId, errId].filter(Boolean).join(' '));
      const err = h('p', { id: errId, class: 'field-error', hidden: true });
      fields.set(p.name, { p, input, err });
      const label = h('label', { for: id }, p.name, req ? h('span', { class: 'req' }, ' (required)') : null);
      const extra = p.s.writeOnly ? ' Secret: masked in events, logs and responses.' : '';
      fieldBox.appendChild(
        h(
          'div',
          { class: ['field', p.kind === 'boolean' && 'field-check'] },
          p.kind === 'boolean' ? [input, label] : [label, input],
          helpId ? h('p', { id: helpId, class: 'help' }, `${p.s.description}${extra}`) : null,
          err,
        ),
      );
    }
  }

  const toggle = h('button', { type: 'button', class: 'btn btn-link btn-sm' });
  const sync = () => {
    fieldBox.hidden = useJson;
    jsonBox.hidden = !useJson;
    toggle.textContent = useJson ? 'Use fields' : 'Edit as JSON';
    toggle.hidden = !props || props.length === 0;
  };
  toggle.addEventListener('click', () => {
    if (!useJson) {
      try {
        json.value = JSON.stringify(readFields(), null, 2);
      } catch {
        /* keep what is there */
      }
    }
    useJson = !useJson;
    sync();
  });
  sync();

  function readFields() {
    const out = {};
    for (const [name, { p, input }] of fields) {
      if (p.kind === 'boolean') {
        if (input.checked || p.s.default !== undefined) out[name] = input.checked;
        continue;
      }
      const raw = input.value.trim();
      if (raw === '') continue;
      if (p.kind === 'integer' || p.kind === 'number') {
        const n = Number(raw);
        if (!Number.isFinite(n) || (p.kind === 'integer' && !Number.isInteger(n))) {
          throw new Error(`${name}: must be ${p.kind === 'integer' ? 'a whole number' : 'a number'}`);
        }
        out[name] = n;
      } else if (p.kind === 'enum') {
        const hit = p.s.enum.find((v) => String(v) === raw);
        out[name] = hit ?? raw;
      } else out[name] = raw;
    }
    return out;
  }

  function read() {
    if (!useJson) return readFields();
    const text = json.value.trim();
    return text === '' ? {} : parseParamsJson(text);
  }

  /** Shows the server's field errors ({field, reason}; field like "params.replicas") next to the fields. */
  function setErrors(errors = []) {
    for (const { input, err } of fields.values()) {
      err.hidden = true;
      input.removeAttribute('aria-invalid');
    }
    for (const e of errors) {
      const name = String(e.field ?? '')
        .replace(/^params[./]?/, '')
        .replace(/^\//, '')
        .split(/[./]/)[0];
      const f = fields.get(name);
      if (!f || useJson) continue;
      f.err.textContent = e.reason;
      f.err.hidden = false;
      f.input.setAttribute('aria-invalid', 'true');
    }
  }

  const el = h(
    'div',
    { class: 'params-editor' },
    h('div', { class: 'params-head' }, toggle),
    fieldBox,
    jsonBox,
  );
  return {
    el,
    read,
    setErrors,
    get empty() {
      return fields.size === 0 && json.value.trim() === '';
    },
  };
}
