/**
 * The convert dialog: what the service will take (from static analysis, before anything runs),
 * then the options, filled with the last ones used for this notebook. "Convert" returns them.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { IChoices, IJobOptions, requestAPI } from './api';

/** Ask for the options of converting `path`; null when the user cancels. */
export async function askOptions(path: string): Promise<IJobOptions | null> {
  const choices = await requestAPI<IChoices>(`choices?path=${encodeURIComponent(path)}`);
  const body = new OptionsForm(path, choices);
  const result = await showDialog({
    title: 'Convert to production',
    body,
    buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Convert' })],
    focusNodeSelector: 'select, input'
  });
  return result.button.accept ? result.value : null;
}

class OptionsForm extends Widget implements Dialog.IBodyWidget<IJobOptions> {
  constructor(
    private readonly path: string,
    choices: IChoices
  ) {
    super();
    this.addClass('nb2prod-options');
    const last = choices.last ?? {};
    this.summary = element('div', 'nb2prod-input-summary');
    this.node.appendChild(this.summary);
    this.showSummary(choices);

    const models = [...choices.models];
    const model = last.model ?? choices.model ?? '';
    if (model && !models.includes(model)) {
      models.push(model);
    }
    this.model = document.createElement('select');
    this.model.name = 'model';
    for (const name of ['', ...models]) {
      const option = document.createElement('option');
      option.value = name;
      option.textContent = name || (models.length === 1 ? `${models[0]} (the only candidate)` : 'from the notebook');
      this.model.appendChild(option);
    }
    this.model.value = model && models.length > 1 ? model : '';
    this.row('Served model', this.model, 'the variable holding the fitted model (the candidates `nb2prod tag` finds)');

    this.raw = input('raw', last.raw ?? '', choices.raw ?? 'inferred from the notebook');
    this.row('Raw frame', this.raw, 'the data frame requests look like, when preprocessing is replayed');
    for (const field of [this.model, this.raw]) {
      field.addEventListener('change', () => void this.reanalyse());
    }

    const overrides = (last.parameters ?? {}) as { [name: string]: unknown };
    if (choices.parameters.length > 0) {
      const table = element('div', 'nb2prod-parameters');
      for (const parameter of choices.parameters) {
        const given = overrides[parameter.name];
        const field = input(`parameter-${parameter.name}`, given === undefined ? '' : String(given), String(parameter.value));
        field.dataset.parameter = parameter.name;
        this.parameters.push(field);
        const label = element('label', 'nb2prod-parameter');
        label.append(
          element('code', '', parameter.name),
          field,
          element('span', 'nb2prod-parameter-type', parameter.type)
        );
        table.appendChild(label);
      }
      this.row('Parameters', table, 'empty keeps the value of the parameters cell (shown greyed)');
    }

    this.require = input('require', (last.require ?? []).join(', '), 'e.g. accuracy>=0.9, f1>=0.8');
    this.row('Metric requirements', this.require, 'the conversion fails when a metric misses one');

    this.compile = document.createElement('input');
    this.compile.type = 'checkbox';
    this.compile.name = 'compile';
    this.compile.checked = last.compile ?? true;
    this.row('Compile the model', this.compile, 'ONNX for scikit-learn models; off is --no-compile');

    this.output = input('output', last.output ?? '', 'next to the notebook: <name>-service');
    this.row('Output folder', this.output, 'relative to the Jupyter root');
  }

  getValue(): IJobOptions {
    const options: IJobOptions = {};
    if (this.model.value) {
      options.model = this.model.value;
    }
    if (this.raw.value.trim()) {
      options.raw = this.raw.value.trim();
    }
    const parameters: { [name: string]: string } = {};
    for (const field of this.parameters) {
      if (field.value.trim() !== '') {
        parameters[field.dataset.parameter as string] = field.value.trim();
      }
    }
    if (Object.keys(parameters).length > 0) {
      options.parameters = parameters;
    }
    const require = this.require.value
      .split(/[,;\n]/)
      .map(text => text.trim())
      .filter(text => text.length > 0);
    if (require.length > 0) {
      options.require = require;
    }
    if (!this.compile.checked) {
      options.compile = false;
    }
    if (this.output.value.trim()) {
      options.output = this.output.value.trim();
    }
    return options;
  }

  /** The served model or the raw frame changed: say again what the service will take. */
  private async reanalyse(): Promise<void> {
    const query = new URLSearchParams({ path: this.path });
    if (this.model.value) {
      query.set('model', this.model.value);
    }
    if (this.raw.value.trim()) {
      query.set('raw', this.raw.value.trim());
    }
    this.summary.textContent = 'The service will take: …';
    try {
      this.showSummary(await requestAPI<IChoices>(`choices?${query.toString()}`));
    } catch (error) {
      this.summary.textContent = `The service will take: unknown (${String(error)})`;
    }
  }

  private showSummary(choices: IChoices): void {
    const text = choices.summary ?? `unknown: ${choices.summary_error?.message ?? 'no analysis'}`;
    this.summary.textContent = `The service will take: ${text}`;
    this.summary.title = choices.summary_error?.hint ?? '';
  }

  private row(title: string, field: HTMLElement, help: string): void {
    const row = element('div', 'nb2prod-option');
    const label = element('div', 'nb2prod-option-title', title);
    label.title = help;
    row.append(label, field);
    this.node.appendChild(row);
  }

  private readonly summary: HTMLElement;
  private readonly model: HTMLSelectElement;
  private readonly raw: HTMLInputElement;
  private readonly parameters: HTMLInputElement[] = [];
  private readonly require: HTMLInputElement;
  private readonly compile: HTMLInputElement;
  private readonly output: HTMLInputElement;
}

function element(tag: string, className: string, text?: string): HTMLElement {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

function input(name: string, value: string, placeholder: string): HTMLInputElement {
  const node = document.createElement('input');
  node.type = 'text';
  node.name = name;
  node.value = value;
  node.placeholder = placeholder;
  node.className = 'jp-mod-styled';
  return node;
}
