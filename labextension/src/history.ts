/**
 * The conversion history (kept by the server across restarts) and "Serve locally": a converted
 * service started by the Jupyter server on 127.0.0.1, with "Open /docs" and "Stop".
 */
import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { IHistory, IJob, IService, requestAPI } from './api';
import { failureOf } from './convert';
import { fit, Notice, showFailure } from './notify';

/** The last conversions of `path` (or of every notebook), newest first, in a dialog. */
export async function showHistory(path?: string): Promise<void> {
  const query = path ? `history?path=${encodeURIComponent(path)}` : 'history';
  const history = await requestAPI<IHistory>(query);
  const node = document.createElement('div'); // the table inside, so that its own styles apply
  node.appendChild(historyTable(history.jobs));
  const body = new Widget({ node });
  body.addClass('nb2prod-history');
  await showDialog({
    title: path ? `nb2prod conversions of ${path}` : 'nb2prod conversions',
    body,
    buttons: [Dialog.okButton({ label: 'Close' })]
  });
}

function historyTable(jobs: IJob[]): HTMLElement {
  if (jobs.length === 0) {
    const empty = document.createElement('p');
    empty.textContent = 'No conversions yet: "Convert to production" starts one.';
    return empty;
  }
  const table = document.createElement('table');
  const head = table.createTHead().insertRow();
  for (const title of ['when', 'notebook', 'status', 'version', 'output folder', 'elapsed', 'error', '']) {
    const cell = document.createElement('th');
    cell.textContent = title;
    head.appendChild(cell);
  }
  const rows = table.createTBody();
  for (const job of jobs) {
    const row = rows.insertRow();
    row.className = `nb2prod-history-row nb2prod-status-${job.status}`;
    const error = job.error
      ? `${job.error.message}${typeof job.error.cell_index === 'number' ? ` (cell ${job.error.cell_index + 1})` : ''}`
      : '';
    const values = [
      new Date(job.created * 1000).toLocaleString(),
      job.path,
      job.status,
      job.result?.version ?? '',
      job.result ? `${job.result.output}/` : (job.options.output ?? ''),
      job.elapsed ? `${job.elapsed.toFixed(1)}s` : '',
      error
    ];
    for (const value of values) {
      const cell = row.insertCell();
      cell.textContent = value;
      cell.title = value;
    }
    const actions = row.insertCell();
    if (job.status === 'succeeded' && job.result) {
      const output = job.result.output;
      const button = document.createElement('button');
      button.className = 'jp-mod-styled jp-mod-accept nb2prod-serve-button';
      button.textContent = 'Serve locally';
      button.addEventListener('click', () => void serveLocally(output));
      actions.appendChild(button);
    }
  }
  return table;
}

/** Start (or find) the service of a converted folder; the notification opens /docs and stops it. */
export async function serveLocally(output: string): Promise<void> {
  const notice = new Notice(`nb2prod: starting the service in ${output}/…`);
  let service: IService;
  try {
    service = await requestAPI<IService>('services', { method: 'POST', body: JSON.stringify({ output }) });
  } catch (error) {
    await showFailure(notice, failureOf(error), { title: 'The service did not start' });
    return;
  }
  const warned = service.warnings && service.warnings.length ? ` (${service.warnings.length} version warning(s))` : '';
  await notice.update({
    type: 'success',
    autoClose: false,
    message: fit([`nb2prod: serving ${output}/ at ${service.url}${warned}`, `docs: ${service.docs}`]),
    actions: [
      {
        label: 'Open /docs',
        displayType: 'accent',
        callback: event => {
          event.preventDefault();
          window.open(service.docs, '_blank', 'noopener');
        }
      },
      { label: 'Stop', callback: () => void stopService(output) }
    ]
  });
}

async function stopService(output: string): Promise<void> {
  try {
    await requestAPI(`services?output=${encodeURIComponent(output)}`, { method: 'DELETE' });
    Notification.info(`nb2prod: stopped the service of ${output}/`, { autoClose: 5000 });
  } catch (error) {
    await showFailure(new Notice(`nb2prod: stopping ${output}/…`), failureOf(error), { title: 'Stop failed' });
  }
}
