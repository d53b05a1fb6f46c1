/**
 * nb2prod's "Convert to production" for JupyterLab 4 and Notebook 7: the `nb2prod:convert`
 * command, as a notebook toolbar button, in the command palette and the notebook context menu.
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, ToolbarButton } from '@jupyterlab/apputils';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { INotebookModel, INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { LabIcon } from '@jupyterlab/ui-components';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import { DisposableDelegate, IDisposable } from '@lumino/disposable';

import { cellView } from './cells';
import { Converter } from './convert';
import { showHistory } from './history';
import { suggestRoles } from './roles';
import iconSvg from '../style/icon.svg';

const CONVERT = 'nb2prod:convert';
const SUGGEST = 'nb2prod:suggest-roles';
const HISTORY = 'nb2prod:history';
const LABEL = 'Convert to production';

export const convertIcon = new LabIcon({ name: 'nb2prod:convert', svgstr: iconSvg });

/** Adds the button to every notebook's toolbar; it converts the notebook it sits on. */
class ToolbarExtension implements DocumentRegistry.IWidgetExtension<NotebookPanel, INotebookModel> {
  constructor(private readonly app: JupyterFrontEnd) {}

  createNew(panel: NotebookPanel): IDisposable {
    const button = new ToolbarButton({
      className: 'nb2prod-convert-button',
      icon: convertIcon,
      label: LABEL,
      tooltip: 'Run this notebook with nb2prod and write a prediction service',
      onClick: () => void this.app.commands.execute(CONVERT, { path: panel.context.localPath })
    });
    const history = new ToolbarButton({
      className: 'nb2prod-history-button',
      label: 'Conversions',
      tooltip: "This notebook's nb2prod conversions (kept across restarts)",
      onClick: () => void this.app.commands.execute(HISTORY, { path: panel.context.localPath })
    });
    panel.toolbar.insertItem(10, 'nb2prodConvert', button);
    panel.toolbar.insertItem(11, 'nb2prodHistory', history);
    cellView(panel); // role labels and lint markers on the cells, refreshed on every save
    return new DisposableDelegate(() => {
      button.dispose();
      history.dispose();
    });
  }
}

function findPanel(tracker: INotebookTracker, args: ReadonlyPartialJSONObject): NotebookPanel | null {
  const path = args['path'];
  if (typeof path === 'string') {
    return tracker.find(panel => panel.context.localPath === path) ?? null;
  }
  return tracker.currentWidget;
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'nb2prod:plugin',
  description: 'Convert the current notebook into a prediction service with nb2prod.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ICommandPalette],
  activate: (app: JupyterFrontEnd, tracker: INotebookTracker, palette: ICommandPalette | null) => {
    const converter = new Converter(app);
    app.commands.addCommand(CONVERT, {
      label: LABEL,
      caption: 'Run this notebook with nb2prod and write a tested, deployable prediction service',
      icon: args => (args['isPalette'] ? undefined : convertIcon),
      isEnabled: args => findPanel(tracker, args) !== null,
      execute: async args => {
        const panel = findPanel(tracker, args);
        if (panel) {
          await converter.convertWithDialog(panel);
        }
      }
    });
    app.commands.addCommand(SUGGEST, {
      label: 'Suggest nb2prod roles',
      caption: 'Tag each code cell with the role nb2prod proposes (load, preprocess, train, …); undoable',
      isEnabled: args => findPanel(tracker, args) !== null,
      execute: async args => {
        const panel = findPanel(tracker, args);
        if (panel) {
          await suggestRoles(app, panel);
        }
      }
    });
    app.commands.addCommand(HISTORY, {
      label: 'nb2prod conversions',
      caption: 'The last conversions of this notebook (status, version, output, error) and "Serve locally"',
      execute: async args => {
        const panel = findPanel(tracker, args);
        await showHistory(panel?.context.localPath);
      }
    });
    app.docRegistry.addWidgetExtension('Notebook', new ToolbarExtension(app));
    for (const [command, rank] of [[CONVERT, 100], [SUGGEST, 101], [HISTORY, 102]] as const) {
      palette?.addItem({ command, category: 'nb2prod' });
      app.contextMenu.addItem({ command, selector: '.jp-Notebook', rank });
    }
    tracker.currentChanged.connect(() => {
      app.commands.notifyCommandChanged(CONVERT);
      app.commands.notifyCommandChanged(SUGGEST);
    });
    console.debug('nb2prod: "Convert to production" is ready');
  }
};

export default plugin;
