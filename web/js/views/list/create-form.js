// The form that creates a deployment (operators): name, plan, the plan's params as fields, labels, and
// whether to deploy right away; on success the app moves to the new deployment's page.
import { api, explain } from '../../api.js';
import { announce, h, nextId, setChildren } from '../../dom.js';
import { paramsEditor } from '../../params-form.js';
import { deploymentHref, navigate } from '../../shell.js';
import { NAME_RE, parseLabels } from './model.js';

/** plans: by name; plan: the one to preselect; onClose(): Cancel or Escape. */
export function createForm({ plans, plan: preselect, onClose }) {
  const nameId = nextId('new-name');
  const planId = nextId('new-plan');
  const labelsId = nextId('new-labels');
  const nameErr = h('p', { class: 'field-error', id: nextId('err'), hidden: true });
  const nameHelp = h(
    'p',
    { class: 'help', id: nextId('help') },
    'Lowercase letters, digits and dashes; up to 63.',
  );
  const name = h('input', {
    id: nameId,
    name: 'name',
    required: true,
    autocomplete: 'off',
    spellcheck: 'false',
    maxlength: 63,
    pattern: '[a-z0-9][a-z0-9\\-]{0,62}',
    'aria-describedby': `${nameHelp.id} ${nameErr.id}`,
  });
  const planNames = [...plans.keys()].sort();
  const plan = h(
    'select',
    { id: planId, name: 'plan', required: true },
    planNames.map((n) => h('option', { value: n, selected: n === preselect }, n)),
  );
  const planDesc = h('p', { class: 'help', id: nextId('help') });
  plan.setAttribute('aria-describedby', planDesc.id);
  const paramsBox = h('div', { class: 'params-box' });
  let editor = null;
  const showPlan = () => {
    const p = plans.get(plan.value);
    planDesc.textContent = p?.description || (p ? 'No description.' : '');
    editor = paramsEditor(p?.params_schema ?? {});
    setChildren(paramsBox, editor.el);
  };
  plan.addEventListener('change', showPlan);
  const labelsHelp = h(
    'p',
    { class: 'help', id: nextId('help') },
    'Optional: key=value, separated by commas.',
  );
  const labels = h('input', {
    id: labelsId,
    name: 'labels',
    autocomplete: 'off',
    placeholder: 'team=web, env=staging',
    'aria-describedby': labelsHelp.id,
  });
  const deployNow = h('input', {
    type: 'checkbox',
    id: nextId('deploy-now'),
    name: 'deploy',
    checked: true,
  });
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Create');
  const cancel = h('button', { type: 'button', class: 'btn' }, 'Cancel');
  cancel.addEventListener('click', onClose);

  const form = h(
    'form',
    { class: 'card create-form', novalidate: true, 'aria-labelledby': 'create-title' },
    h('h2', { id: 'create-title' }, 'New deployment'),
    planNames.length === 0
      ? h('p', { class: 'callout' }, 'The server has no plans configured; add one to its config file.')
      : null,
    h(
      'div',
      { class: 'form-grid' },
      h('div', { class: 'field' }, h('label', { for: nameId }, 'Name'), name, nameHelp, nameErr),
      h('div', { class: 'field' }, h('label', { for: planId }, 'Plan'), plan, planDesc),
    ),
    h('fieldset', { class: 'params-set' }, h('legend', null, 'Params'), paramsBox),
    h('div', { class: 'field' }, h('label', { for: labelsId }, 'Labels'), labels, labelsHelp),
    h(
      'div',
      { class: 'field field-check' },
      deployNow,
      h('label', { for: deployNow.id }, 'Start a deploy attempt right away'),
    ),
    error,
    h('div', { class: 'form-actions' }, submit, cancel),
  );
  showPlan();

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.hidden = true;
    nameErr.hidden = true;
    name.removeAttribute('aria-invalid');
    const n = name.value.trim();
    if (!NAME_RE.test(n)) {
      nameErr.textContent = 'Use lowercase letters, digits and dashes, starting with a letter or digit.';
      nameErr.hidden = false;
      name.setAttribute('aria-invalid', 'true');
      name.focus();
      return;
    }
    let params;
    let labelObj;
    try {
      params = editor.read();
      labelObj = parseLabels(labels.value);
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
      return;
    }
    submit.disabled = true;
    submit.setAttribute('aria-busy', 'true');
    try {
      const body = { name: n, plan: plan.value, params };
      if (labelObj) body.labels = labelObj;
      const dep = await api.create(body);
      if (deployNow.checked) await api.deploy(dep.id, {});
      announce(`Created ${dep.name}${deployNow.checked ? '; deploying' : ''}`);
      navigate(deploymentHref(dep.name));
    } catch (err) {
      error.textContent = explain(err);
      error.hidden = false;
      editor.setErrors(err.errors);
      const nameProblem = (err.errors ?? []).find((x) => x.field === 'name');
      if (err.code === 'DEPLOYMENT_EXISTS' || nameProblem) {
        nameErr.textContent = nameProblem?.reason ?? `A deployment named ${n} exists already.`;
        nameErr.hidden = false;
        name.setAttribute('aria-invalid', 'true');
      }
    } finally {
      submit.disabled = false;
      submit.removeAttribute('aria-busy');
    }
  });
  form.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') onClose();
  });
  return form;
}
