/**
 * nb2prod's view on the cells of an open notebook: a role label in each code cell's corner (the
 * reason `nb2prod tag` gives as its tooltip), lint markers, and proposed roles waiting for the
 * user's "Accept" or "Dismiss". Refreshed when the notebook is opened and after every save,
 * without a kernel (`GET /nb2prod/roles`, `GET /nb2prod/lint`).
 */
import { ICellModel } from '@jupyterlab/cells';
import { NotebookPanel } from '@jupyterlab/notebook';

import { IFinding, ILintReport, IRolesReport, requestAPI } from './api';

/** The cell roles of the product contract (other tags are the user's). */
export const ROLE_TAGS = ['parameters', 'load', 'preprocess', 'train', 'evaluate', 'skip'];
/** A finding's "nb.ipynb, cell 4 (`...`), line 7: " prefix: the marker sits on that cell already. */
const LOCATED = /^.*?, line \d+: /;
const ROLE_LINE = /^\s*#\|\s*nb2prod\s*:\s*([\w-]+)\s*$/;

interface IMarks {
  roles: string[];
  reason: string;
  proposed: string[] | null;
  findings: IFinding[];
}

const views = new WeakMap<NotebookPanel, CellView>();

/** The view of `panel` (made on first use; it follows the panel's saves until it is closed). */
export function cellView(panel: NotebookPanel): CellView {
  let view = views.get(panel);
  if (!view) {
    view = new CellView(panel);
    views.set(panel, view);
  }
  return view;
}

export class CellView {
  constructor(private readonly panel: NotebookPanel) {
    void panel.context.ready.then(() => {
      panel.context.saveState.connect((_, state) => {
        if (state === 'completed') {
          void this.refresh();
        }
      });
      panel.model?.cells.changed.connect(() => this.schedule());
      panel.model?.contentChanged.connect(() => this.schedule());
      panel.content.modelContentChanged.connect(() => this.schedule());
      void this.refresh();
    });
  }

  /** Ask the server again (roles and lint of the notebook as saved) and redraw. */
  async refresh(): Promise<void> {
    const path = this.panel.context.localPath;
    const query = `path=${encodeURIComponent(path)}`;
    const [roles, lint] = await Promise.allSettled([
      requestAPI<IRolesReport>(`roles?${query}`),
      requestAPI<ILintReport>(`lint?${query}`)
    ]);
    const model = this.panel.content.model;
    if (!model || this.panel.isDisposed) {
      return;
    }
    const ids = Array.from({ length: model.cells.length }, (_, i) => model.cells.get(i).id);
    this.marks.clear();
    if (roles.status === 'fulfilled') {
      for (const cell of roles.value.cells) {
        const id = ids[cell.cell_index];
        if (id) {
          this.marks.set(id, {
            roles: cell.roles,
            reason: cell.proposed ? cell.proposed.reason : '',
            proposed: this.proposals.get(id) ?? null,
            findings: []
          });
        }
      }
      this.roleError = roles.value.error ? roles.value.error.message : '';
    }
    if (lint.status === 'fulfilled') {
      for (const finding of lint.value.findings) {
        const id = typeof finding.cell_index === 'number' ? ids[finding.cell_index] : undefined;
        const marks = id ? this.marks.get(id) : undefined;
        if (marks) {
          marks.findings.push(finding);
        }
      }
    }
    this.render();
  }

  /** Show proposed roles next to the current ones (cell model id -> roles) until accepted or dismissed. */
  propose(proposals: Map<string, string[]>): void {
    this.proposals = proposals;
    this.render();
  }

  clearProposals(): void {
    this.proposals = new Map();
    this.render();
  }

  private schedule(): void {
    if (this.pending === null) {
      this.pending = window.setTimeout(() => {
        this.pending = null;
        this.render();
      }, 150);
    }
  }

  private render(): void {
    if (this.panel.isDisposed) {
      return;
    }
    for (const cell of this.panel.content.widgets) {
      cell.node.querySelector('.nb2prod-cell-marks')?.remove();
      cell.node.classList.remove('nb2prod-mod-error', 'nb2prod-mod-warning');
      if (cell.model.type !== 'code') {
        continue;
      }
      const marks = this.marks.get(cell.model.id);
      const roles = liveRoles(cell.model);
      const proposed = this.proposals.get(cell.model.id);
      const box = document.createElement('div');
      box.className = 'nb2prod-cell-marks';
      for (const finding of marks?.findings ?? []) {
        const marker = document.createElement('span');
        marker.className = `nb2prod-lint-marker nb2prod-lint-${finding.severity}`;
        marker.textContent = `${finding.severity === 'error' ? '✖' : '⚠'} ${finding.message.replace(LOCATED, '')}`;
        marker.title = `${finding.severity} [${finding.code}]: ${finding.message}${finding.hint ? `\nFix: ${finding.hint}` : ''}`;
        box.appendChild(marker);
        const level = finding.severity === 'error' ? 'error' : 'warning';
        cell.node.classList.add(`nb2prod-mod-${level}`);
      }
      if (proposed && !sameSet(proposed, roles)) {
        const label = document.createElement('span');
        label.className = 'nb2prod-role-label nb2prod-role-proposed';
        label.textContent = `→ ${proposed.join(' + ') || 'no role'}`;
        label.title = `nb2prod proposes: ${proposed.join(', ') || 'no role'}`;
        box.appendChild(label);
      }
      const label = document.createElement('span');
      label.className = 'nb2prod-role-label' + (roles.length ? '' : ' nb2prod-role-none');
      label.textContent = roles.join(' + ') || 'no role';
      label.title = this.tooltip(marks, roles);
      box.appendChild(label);
      // In the input's bottom right corner: the top right one is the active cell's toolbar.
      const corner = cell.node.querySelector('.jp-Cell-inputWrapper') ?? cell.node;
      corner.classList.add('nb2prod-marked');
      corner.appendChild(box);
    }
  }

  private tooltip(marks: IMarks | undefined, roles: string[]): string {
    if (!marks) {
      return 'nb2prod role: save the notebook to see why';
    }
    if (!marks.reason) {
      return this.roleError ? `nb2prod: ${this.roleError}` : 'nb2prod role';
    }
    return `nb2prod ${roles.length ? roles.join(', ') : 'no role'}: ${marks.reason}`;
  }

  private marks = new Map<string, IMarks>();
  private proposals = new Map<string, string[]>();
  private roleError = '';
  private pending: number | null = null;
}

/** The roles the cell has now: its role tags, else its `#| nb2prod: ROLE` line (live, before any save). */
function liveRoles(cell: ICellModel): string[] {
  const tags = cell.getMetadata('tags');
  const tagged = Array.isArray(tags) ? tags.filter(tag => ROLE_TAGS.includes(tag)) : [];
  if (tagged.length > 0) {
    return tagged;
  }
  const line = ROLE_LINE.exec(cell.sharedModel.getSource().split('\n', 1)[0]);
  return line ? [line[1]] : [];
}

export function sameSet(a: string[], b: string[]): boolean {
  const left = new Set(a);
  const right = new Set(b);
  return left.size === right.size && [...left].every(tag => right.has(tag));
}
