/**
 * "Convert to production": save, ask for the options (the convert dialog), lint, start the job,
 * follow it to the end.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { PathExt } from '@jupyterlab/coreutils';
import { NotebookPanel } from '@jupyterlab/notebook';

import { IErrorInfo, IFinding, IJob, IJobOptions, ILintReport, Nb2ProdFailure, requestAPI } from './api';
import { askOptions } from './dialog';
import { serveLocally } from './history';
import { Notice, selectCell, showFailure, showProgress, showSuccess } from './notify';

const POLL_MS = 500;

export class Converter {
  constructor(private readonly app: JupyterFrontEnd) {}

  /** Save the notebook, ask for the options, then convert; nothing happens when the dialog is cancelled. */
  async convertWithDialog(panel: NotebookPanel): Promise<void> {
    let options: IJobOptions | null;
    try {
      await saveFirst(panel);
      options = await askOptions(panel.context.localPath);
    } catch (error) {
      await this.fail(new Notice(`nb2prod: checking ${PathExt.basename(panel.context.localPath)}…`), panel, failureOf(error), {});
      return;
    }
    if (options !== null) {
      await this.convert(panel, options);
    }
  }

  /** Convert the notebook in `panel`; everything that happens is shown in one notification. */
  async convert(panel: NotebookPanel, options: IJobOptions = {}): Promise<void> {
    const path = panel.context.localPath;
    if (this.busy.has(path)) {
      return; // this notebook's conversion is already on screen
    }
    this.busy.add(path);
    const name = PathExt.basename(path);
    const notice = new Notice(`nb2prod: saving and checking ${name}…`);
    try {
      await saveFirst(panel);
      await this.lint(path);
      const job = await this.follow(notice, name, await this.submit(path, options));
      if (job.status === 'succeeded' && job.result) {
        const output = job.result.output;
        await showSuccess(this.app, notice, job.result, () => void serveLocally(output));
      } else {
        const error = { ...(job.error ?? { message: 'the conversion failed.' }), log: job.log };
        await this.fail(notice, panel, error, options);
      }
    } catch (error) {
      await this.fail(notice, panel, failureOf(error), options);
    } finally {
      this.busy.delete(path);
    }
  }

  /** Problems that would stop the conversion, shown before anything runs. */
  private async lint(path: string): Promise<void> {
    const report = await requestAPI<ILintReport>(`lint?path=${encodeURIComponent(path)}`);
    const errors = report.findings.filter(finding => finding.severity === 'error');
    if (errors.length > 0) {
      throw new Nb2ProdFailure(lintFailure(errors));
    }
  }

  private submit(path: string, options: IJobOptions): Promise<IJob> {
    return requestAPI<IJob>('jobs', { method: 'POST', body: JSON.stringify({ path, options }) });
  }

  private async follow(notice: Notice, name: string, job: IJob): Promise<IJob> {
    while (job.status === 'queued' || job.status === 'running') {
      await showProgress(notice, name, job);
      await new Promise(resolve => setTimeout(resolve, POLL_MS));
      job = await requestAPI<IJob>(`jobs/${job.id}`);
    }
    return job;
  }

  private async fail(notice: Notice, panel: NotebookPanel, info: IErrorInfo, options: IJobOptions): Promise<void> {
    await showFailure(notice, info, {
      goToCell: index => selectCell(this.app, panel, index),
      retryReplacing: () => void this.convert(panel, { ...options, force: true })
    });
  }

  private readonly busy = new Set<string>();
}

function lintFailure(errors: IFinding[]): IErrorInfo {
  const first = errors[0];
  const message =
    errors.length === 1
      ? first.message
      : `${errors.length} problems found before running; first: ${first.message}`;
  return { kind: 'LintError', message, hint: first.hint, exit_code: 1, cell_index: first.cell_index, findings: errors };
}

/** nb2prod reads the notebook from disk: save the open one first, if it has changes. */
export async function saveFirst(panel: NotebookPanel): Promise<void> {
  await panel.context.ready;
  if (!panel.context.model.dirty) {
    return;
  }
  try {
    await panel.context.save();
  } catch (error) {
    throw new Nb2ProdFailure({
      kind: 'SaveError',
      message: `could not save ${panel.context.localPath}: ${String(error)}`,
      hint: 'nb2prod reads the notebook as saved on disk: save it, then try again.'
    });
  }
}

/** Whatever was thrown, as something to show. */
export function failureOf(error: unknown): IErrorInfo {
  return error instanceof Nb2ProdFailure
    ? error.info
    : { kind: 'FrontendError', message: `unexpected error: ${String(error)}`, hint: 'Reload the page.' };
}
