/**
 * One click of "Convert to production": save, lint, start the job, follow it to the end.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { PathExt } from '@jupyterlab/coreutils';
import { NotebookPanel } from '@jupyterlab/notebook';

import { IErrorInfo, IFinding, IJob, IJobOptions, ILintReport, Nb2ProdFailure, requestAPI } from './api';
import { selectCell, showFailure, showProgress, showSuccess, start } from './notify';

const POLL_MS = 500;

export class Converter {
  constructor(private readonly app: JupyterFrontEnd) {}

  /** Convert the notebook in `panel`; everything that happens is shown in one notification. */
  async convert(panel: NotebookPanel, options: IJobOptions = {}): Promise<void> {
    const path = panel.context.localPath;
    if (this.busy.has(path)) {
      return; // this notebook's conversion is already on screen
    }
    this.busy.add(path);
    const name = PathExt.basename(path);
    const id = start(`nb2prod: saving and checking ${name}…`);
    try {
      await this.save(panel);
      await this.lint(path);
      const job = await this.follow(id, name, await this.submit(path, options));
      if (job.status === 'succeeded' && job.result) {
        showSuccess(this.app, id, job.result);
      } else {
        this.fail(id, panel, { ...(job.error ?? { message: 'the conversion failed.' }), log: job.log });
      }
    } catch (error) {
      const info: IErrorInfo =
        error instanceof Nb2ProdFailure
          ? error.info
          : { kind: 'FrontendError', message: `unexpected error: ${String(error)}`, hint: 'Reload the page.' };
      this.fail(id, panel, info);
    } finally {
      this.busy.delete(path);
    }
  }

  private async save(panel: NotebookPanel): Promise<void> {
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
        hint: 'nb2prod converts the notebook as saved on disk: save it, then try again.'
      });
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

  private async follow(id: string, name: string, job: IJob): Promise<IJob> {
    while (job.status === 'queued' || job.status === 'running') {
      showProgress(id, name, job);
      await new Promise(resolve => setTimeout(resolve, POLL_MS));
      job = await requestAPI<IJob>(`jobs/${job.id}`);
    }
    return job;
  }

  private fail(id: string, panel: NotebookPanel, info: IErrorInfo): void {
    showFailure(id, info, {
      goToCell: index => selectCell(this.app, panel, index),
      retryReplacing: () => void this.convert(panel, { force: true })
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
