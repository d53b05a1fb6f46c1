/**
 * What the user sees of a conversion: one notification that shows progress, then the result or
 * the error (the only place errors are shown), a details dialog, and "Go to cell".
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { PageConfig, URLExt } from '@jupyterlab/coreutils';
import { NotebookPanel } from '@jupyterlab/notebook';
import { ReadonlyJSONValue } from '@lumino/coreutils';
import { Widget } from '@lumino/widgets';

import { IErrorInfo, IJob, IResult } from './api';

/** JupyterLab shows at most this many characters of a notification message. */
const MAX_MESSAGE = 140;

const TOAST_WAIT_MS = 3000;

/**
 * The one notification of a conversion. JupyterLab drops an update that arrives before the
 * toast it updates is on screen (the toast library loads lazily and mounts on the next render),
 * so every update waits until the first message is shown (or 3 s, e.g. in do-not-disturb mode).
 */
export class Notice {
  constructor(message: string) {
    const text = fit([message]);
    this.id = Notification.emit(text, 'in-progress', { autoClose: false });
    this.shown = toastShown(text.split('\n')[0]);
  }

  async update(args: Omit<Notification.IUpdate<ReadonlyJSONValue>, 'id'>): Promise<void> {
    await this.shown;
    if (Notification.update({ ...args, id: this.id }) || args.type === 'in-progress') {
      return; // a progress notification the user closed stays closed
    }
    this.id = Notification.emit(args.message ?? '', args.type, args); // but the outcome is always shown
  }

  private id: string;
  private readonly shown: Promise<void>;
}

async function toastShown(text: string): Promise<void> {
  const deadline = Date.now() + TOAST_WAIT_MS;
  while (Date.now() < deadline) {
    const toasts = Array.from(document.querySelectorAll('.jp-toast-message'));
    if (toasts.some(toast => (toast.textContent ?? '').includes(text))) {
      return;
    }
    await new Promise(resolve => setTimeout(resolve, 50));
  }
}

/** Show where the job is: queued, or cell i/n and the cell's first line. */
export async function showProgress(notice: Notice, notebook: string, job: IJob): Promise<void> {
  const progress = job.progress;
  if (job.status === 'queued' || !progress) {
    const waiting =
      job.status === 'queued' ? 'waiting for another conversion to finish' : 'starting a kernel';
    await notice.update({ message: fit([`nb2prod: ${notebook}: ${waiting}…`]), type: 'in-progress' });
    return;
  }
  await notice.update({
    message: fit([`nb2prod: ${notebook}`, `cell ${progress.cell}/${progress.total}: ${progress.first_line}`]),
    type: 'in-progress',
    progress: Math.max(0, (progress.cell - 1) / Math.max(1, progress.total)),
    autoClose: false
  });
}

/** A converted notebook: the output folder, version, model, metrics and how to serve it. */
export async function showSuccess(
  app: JupyterFrontEnd,
  notice: Notice,
  result: IResult,
  serve?: () => void
): Promise<void> {
  const model = result.model_class.split('.').pop() ?? result.model_class;
  const metrics = formatMetrics(result.metrics);
  await notice.update({
    type: 'success',
    autoClose: false,
    progress: 1,
    message: fit(
      [
        `nb2prod: ${result.name} ${result.version} → ${result.output}/`,
        `model ${model}${metrics ? ` · ${metrics}` : ''}`,
        `serve: ${result.next.serve}`
      ],
      [1, 2, 0]
    ),
    actions: [
      ...(serve ? [keep({ label: 'Serve locally', displayType: 'accent', callback: serve })] : []),
      keep({ label: 'Details', callback: () => void showDetails('Converted to production', successDetails(result)) }),
      keep({ label: 'Open folder', callback: () => openFolder(app, result.output) })
    ]
  });
}

/** Any failure: message and fix, "Go to cell" when a cell is to blame, and the details. */
export async function showFailure(
  notice: Notice,
  failure: IErrorInfo,
  extra: {
    goToCell?: (index: number) => void;
    retryReplacing?: () => void;
    chooseModel?: () => void;
    title?: string;
  } = {}
): Promise<void> {
  const actions: Notification.IAction[] = [];
  const index = failure.cell_index;
  if (typeof index === 'number' && extra.goToCell) {
    const goToCell = extra.goToCell;
    actions.push(keep({ label: 'Go to cell', displayType: 'accent', callback: () => goToCell(index) }));
  }
  if (failure.kind === 'OutputExistsError' && extra.retryReplacing) {
    actions.push({ label: 'Replace it', callback: extra.retryReplacing });
  }
  if (extra.chooseModel) {
    actions.push({ label: 'Choose model…', callback: extra.chooseModel });
  }
  const title =
    extra.title ?? (failure.kind === 'LintError' ? 'Problems found before running' : 'Conversion failed');
  actions.push(keep({ label: 'Details', callback: () => void showDetails(title, errorDetails(failure)) }));
  const headline = failure.hint ? clip(failure.message, 90) : failure.message;
  const message = fit([`nb2prod: ${headline}`, failure.hint ? `fix: ${failure.hint}` : '']);
  await notice.update({ type: 'error', message, autoClose: false, actions });
}

/** Make cell `index` (0-based, markdown cells counted) the active cell and scroll to it. */
export function selectCell(app: JupyterFrontEnd, panel: NotebookPanel, index: number): void {
  if (panel.isDisposed) {
    return;
  }
  app.shell.activateById(panel.id);
  const notebook = panel.content;
  if (index < 0 || index >= notebook.widgets.length) {
    return;
  }
  notebook.mode = 'command';
  notebook.deselectAll();
  notebook.activeCellIndex = index;
  void notebook.scrollToCell(notebook.widgets[index], 'center');
  notebook.node.focus();
}

function keep(action: Notification.IAction): Notification.IAction {
  // Actions close the notification by default; these leave it up, so the message stays readable.
  const callback = action.callback;
  return {
    ...action,
    callback: (event: MouseEvent) => {
      event.preventDefault();
      callback(event);
    }
  };
}

function formatMetrics(metrics: IResult['metrics']): string {
  return Object.entries(metrics)
    .map(([name, value]) => `${name}=${value === null ? 'n/a' : Number(value.toPrecision(4))}`)
    .join(', ');
}

/**
 * Lines joined to fit one notification: lines are shortened in `order` (default: last first),
 * each cut with an ellipsis, or dropped when little of it would be left.
 */
export function fit(lines: string[], order?: number[]): string {
  const parts = [...lines];
  const join = () => parts.filter(part => part.length > 0).join('\n');
  for (const i of order ?? parts.map((_, j) => parts.length - 1 - j)) {
    const excess = join().length - MAX_MESSAGE;
    if (excess <= 0) {
      break;
    }
    const room = parts[i].length - excess - 1;
    parts[i] = room >= 12 ? parts[i].slice(0, room) + '…' : '';
  }
  const text = join();
  return text.length > MAX_MESSAGE ? text.slice(0, MAX_MESSAGE - 1) + '…' : text;
}

/** A long first line would push the fix out of the notification: cut it, the details have it all. */
function clip(text: string, length: number): string {
  return text.length > length ? text.slice(0, length - 1) + '…' : text;
}

function successDetails(result: IResult): string[] {
  const lines = [
    `Output folder: ${result.output}/`,
    `Service: ${result.name} ${result.version}`,
    `Model: \`${result.model_variable}\` (${result.model_class}), input \`${result.features_variable}\``,
    `Metrics: ${formatMetrics(result.metrics) || 'none'}`,
    `${result.golden_examples} golden examples; ${result.elapsed.toFixed(1)}s on kernel ${result.kernel}`,
    '',
    'Test it:',
    `  ${result.next.test}`,
    'Serve it:',
    `  ${result.next.serve}`
  ];
  lines.push(...result.warnings.map(text => `warning: ${text}`), ...result.notes.map(text => `note: ${text}`));
  return lines;
}

function errorDetails(failure: IErrorInfo): string[] {
  const lines = [failure.message];
  if (failure.hint) {
    lines.push('', `Fix: ${failure.hint}`);
  }
  if (typeof failure.cell_index === 'number') {
    lines.push('', `Cell: ${failure.cell_index + 1} from the top (markdown cells counted)`);
  }
  if (failure.findings?.length) {
    lines.push('');
  }
  for (const finding of failure.findings ?? []) {
    const cell = typeof finding.cell_index === 'number' ? `cell ${finding.cell_index + 1}: ` : '';
    lines.push(`- ${finding.severity} [${finding.code}] ${cell}${finding.message}`);
  }
  if (failure.executed_notebook) {
    lines.push('', `The executed notebook is kept at ${failure.executed_notebook}`);
  }
  if (failure.traceback) {
    lines.push('', failure.traceback);
  }
  if (failure.log && failure.log.length) {
    lines.push('', 'Log:', ...failure.log);
  }
  return lines;
}

export async function showDetails(title: string, lines: string[]): Promise<void> {
  const body = new Widget({ node: document.createElement('pre') });
  body.addClass('nb2prod-details');
  body.node.textContent = lines.join('\n');
  await showDialog({ title, body, buttons: [Dialog.okButton({ label: 'Close' })] });
}

function openFolder(app: JupyterFrontEnd, folder: string): void {
  if (app.name === 'JupyterLab' && app.commands.hasCommand('filebrowser:go-to-path')) {
    void app.commands.execute('filebrowser:go-to-path', { path: folder });
    return;
  }
  window.open(URLExt.join(PageConfig.getBaseUrl(), 'tree', URLExt.encodeParts(folder)), '_blank');
}
