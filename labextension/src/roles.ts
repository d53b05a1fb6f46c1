/**
 * "Suggest nb2prod roles": ask the server for a role per code cell and show the proposals as
 * labels on the cells first; "Accept" stores them as the open notebook's cell tags in one
 * undoable step (also undone by the notification's "Undo"), "Dismiss" drops them.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { InputDialog, Notification } from '@jupyterlab/apputils';
import { ICellModel } from '@jupyterlab/cells';
import { PathExt } from '@jupyterlab/coreutils';
import { NotebookPanel } from '@jupyterlab/notebook';

import { requestAPI } from './api';
import { cellView } from './cells';
import { failureOf, saveFirst } from './convert';
import { fit, Notice, selectCell, showDetails, showFailure } from './notify';

/** One code cell's proposed roles, as `GET /nb2prod/tag` gives them. */
export interface IProposal {
  cell_index: number;
  role: string | null;
  roles: string[];
  reason: string;
  fixed?: boolean;
}

interface ITagReport {
  path: string;
  proposals: IProposal[];
  role_tags: string[];
}

interface ITagChange {
  index: number;
  id: string; // the cell model's id: the labels follow the cell if cells move
  roles: string[];
  before: string[];
  after: string[];
}

export async function suggestRoles(app: JupyterFrontEnd, panel: NotebookPanel, model?: string): Promise<void> {
  const path = panel.context.localPath;
  const notice = new Notice(`nb2prod: proposing roles for ${PathExt.basename(path)}…`);
  try {
    await saveFirst(panel);
    const query = `tag?path=${encodeURIComponent(path)}` + (model ? `&model=${encodeURIComponent(model)}` : '');
    const report = await requestAPI<ITagReport>(query);
    const changes = proposedChanges(panel, report);
    await showProposal(notice, panel, report, changes);
  } catch (error) {
    const failure = failureOf(error);
    await showFailure(notice, failure, {
      title: 'No roles proposed',
      goToCell: index => selectCell(app, panel, index),
      chooseModel:
        failure.kind === 'ModelChoiceError' ? () => void askModelThenSuggest(app, panel) : undefined
    });
  }
}

async function askModelThenSuggest(app: JupyterFrontEnd, panel: NotebookPanel): Promise<void> {
  const answer = await InputDialog.getText({
    title: 'Which variable holds the model to serve?',
    placeholder: 'e.g. model or search.best_estimator_'
  });
  if (answer.button.accept && answer.value) {
    await suggestRoles(app, panel, answer.value.trim());
  }
}

/** The tag changes the proposals would make (role tags replaced, other tags kept, fixed roles left). */
function proposedChanges(panel: NotebookPanel, report: ITagReport): ITagChange[] {
  const model = panel.content.model;
  if (!model) {
    return [];
  }
  const roleTags = new Set(report.role_tags);
  const changes: ITagChange[] = [];
  for (const proposal of report.proposals) {
    const cell = proposal.fixed ? undefined : model.cells.get(proposal.cell_index);
    if (!cell || cell.type !== 'code') {
      continue;
    }
    const before = tagsOf(cell);
    const current = before.filter(tag => roleTags.has(tag));
    if (sameSet(current, proposal.roles)) {
      continue;
    }
    const after = [...new Set([...before.filter(tag => !roleTags.has(tag)), ...proposal.roles])];
    changes.push({ index: proposal.cell_index, id: cell.id, roles: proposal.roles, before, after });
  }
  return changes;
}

function applyChanges(panel: NotebookPanel, changes: ITagChange[], pick: (change: ITagChange) => string[]): void {
  const model = panel.content.model;
  if (!model || changes.length === 0) {
    return;
  }
  model.sharedModel.transact(() => {
    for (const change of changes) {
      const cell = Array.from({ length: model.cells.length }, (_, i) => model.cells.get(i)).find(
        candidate => candidate.id === change.id
      );
      if (!cell) {
        continue;
      }
      const tags = pick(change);
      if (tags.length > 0) {
        cell.setMetadata('tags', tags);
      } else {
        cell.deleteMetadata('tags');
      }
    }
  });
}

/** The proposals as labels on the cells, and a notification to accept or dismiss them. */
async function showProposal(notice: Notice, panel: NotebookPanel, report: ITagReport, changes: ITagChange[]) {
  const name = PathExt.basename(report.path);
  const details = report.proposals.map(
    p => `cell ${p.cell_index + 1}: ${p.roles.join(', ') || '(untagged)'}${p.fixed ? ' (kept)' : ''} - ${p.reason}`
  );
  const detailsAction: Notification.IAction = {
    label: 'Details',
    callback: event => {
      event.preventDefault();
      void showDetails('Proposed roles', details);
    }
  };
  if (changes.length === 0) {
    await notice.update({
      type: 'info',
      message: fit([`nb2prod: the role tags of ${name} already match.`]),
      actions: [detailsAction]
    });
    return;
  }
  const view = cellView(panel);
  view.propose(new Map(changes.map(change => [change.id, change.roles])));
  const summary = changes.map(change => `cell ${change.index + 1}: ${change.roles.join('+') || '-'}`).join(', ');
  await notice.update({
    type: 'info',
    autoClose: false,
    message: fit([`nb2prod proposes roles for ${changes.length} cell(s) of ${name}`, summary]),
    actions: [
      {
        label: 'Accept',
        displayType: 'accent',
        callback: () => {
          applyChanges(panel, changes, change => change.after);
          view.clearProposals(); // and redraws the labels from the new tags
          void showTagged(panel, name, changes, summary);
        }
      },
      { label: 'Dismiss', callback: () => view.clearProposals() },
      detailsAction
    ]
  });
}

async function showTagged(panel: NotebookPanel, name: string, changes: ITagChange[], summary: string) {
  const notice = new Notice(`nb2prod: tagged ${changes.length} cell(s) of ${name} (save to keep)`);
  await notice.update({
    type: 'success',
    autoClose: false,
    message: fit([`nb2prod: tagged ${changes.length} cell(s) of ${name} (save to keep)`, summary]),
    actions: [
      {
        label: 'Undo',
        callback: () => {
          applyChanges(panel, changes, change => change.before);
          cellView(panel).clearProposals();
        }
      }
    ]
  });
}

function tagsOf(cell: ICellModel): string[] {
  const tags = cell.getMetadata('tags');
  return Array.isArray(tags) ? tags.filter((tag): tag is string => typeof tag === 'string') : [];
}

function sameSet(a: string[], b: string[]): boolean {
  const left = new Set(a);
  const right = new Set(b);
  return left.size === right.size && [...left].every(tag => right.has(tag));
}
