/**
 * The one way the frontend talks to the nb2prod server extension, and the shapes it answers with.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** A lint finding, as `GET /nb2prod/lint` gives it. */
export interface IFinding {
  severity: 'error' | 'warning' | 'note';
  code: string;
  message: string;
  hint: string;
  cell_index: number | null;
  line?: number | null;
}

/** `GET /nb2prod/lint?path=...` */
export interface ILintReport {
  path: string;
  findings: IFinding[];
  errors: number;
}

/** What went wrong and what to do: a failed job's error, or any error answer of the server. */
export interface IErrorInfo {
  kind?: string;
  message: string;
  hint?: string;
  exit_code?: number;
  cell_index?: number | null;
  status?: number;
  findings?: IFinding[];
  traceback?: string;
  executed_notebook?: string | null;
  log?: string[];
}

/** Reported before each cell runs. */
export interface IProgress {
  cell: number;
  total: number;
  elapsed: number;
  first_line: string;
  cell_index: number | null;
}

/** A successful conversion; paths are relative to the server root. */
export interface IResult {
  output: string;
  name: string;
  version: string;
  model_class: string;
  model_variable: string;
  features_variable: string;
  metrics: { [name: string]: number | null };
  golden_examples: number;
  kernel: string;
  elapsed: number;
  warnings: string[];
  notes: string[];
  next: { test: string; serve: string };
}

/** `GET /nb2prod/jobs/{id}`; history entries have the same shape (no progress, no log). */
export interface IJob {
  id: string;
  path: string;
  status: 'queued' | 'running' | 'succeeded' | 'failed' | 'interrupted';
  created: number;
  elapsed: number;
  options: IJobOptions;
  progress: IProgress | null;
  log: string[];
  result: IResult | null;
  error: IErrorInfo | null;
}

/** `GET /nb2prod/history[?path=...]`, newest first. */
export interface IHistory {
  path: string | null;
  jobs: IJob[];
}

/** The CLI's `convert` options, as the job endpoint takes them. */
export interface IJobOptions {
  output?: string;
  parameters?: { [name: string]: unknown };
  model?: string;
  features?: string;
  raw?: string;
  require?: string[];
  seed?: number;
  compile?: boolean;
  force?: boolean;
}

/** `GET /nb2prod/roles?path=...`: each code cell's roles now, and the proposal of `nb2prod tag`. */
export interface ICellRoles {
  cell_index: number;
  roles: string[];
  proposed: { roles: string[]; reason: string; fixed: boolean } | null;
}

export interface IRolesReport {
  path: string;
  cells: ICellRoles[];
  model: string | null;
  error: IErrorInfo | null;
}

/** `GET /nb2prod/choices?path=...`: what the convert dialog offers. */
export interface IChoices {
  path: string;
  models: string[];
  model: string | null;
  raw: string | null;
  parameters: { name: string; value: unknown; type: string }[];
  summary: string | null;
  summary_error: IErrorInfo | null;
  last: IJobOptions | null;
}

/** `POST /nb2prod/services`: a converted service served from the Jupyter server. */
export interface IService {
  output: string;
  port: number;
  url: string;
  docs: string;
  warnings?: string[];
}

/** An error to show the user: it always carries a message and, when there is one, a fix. */
export class Nb2ProdFailure extends Error {
  constructor(readonly info: IErrorInfo) {
    super(info.message);
  }
}

export const NOT_ENABLED: IErrorInfo = {
  kind: 'ExtensionNotEnabled',
  message: 'the nb2prod server extension is not enabled.',
  hint: 'Run `jupyter server extension enable nb2prod.jupyter` and restart Jupyter.'
};

/**
 * Call `/nb2prod/<endpoint>` on the Jupyter server (token, cookie and XSRF handled by
 * ServerConnection); resolve with the JSON answer, or reject with an Nb2ProdFailure.
 */
export async function requestAPI<T>(endpoint: string, init: RequestInit = {}): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'nb2prod', endpoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new Nb2ProdFailure({
      kind: 'NetworkError',
      message: `cannot reach the Jupyter server (${String(error)}).`,
      hint: 'Check that Jupyter is still running, then try again.'
    });
  }
  const body = await readJSON(response);
  if (response.ok) {
    return body as T;
  }
  if (body && body.source === 'nb2prod' && typeof body.message === 'string') {
    throw new Nb2ProdFailure({ ...(body as IErrorInfo), status: response.status });
  }
  if (response.status === 404) {
    throw new Nb2ProdFailure(NOT_ENABLED);
  }
  const said = body && typeof body.message === 'string' ? `: ${body.message}` : '';
  throw new Nb2ProdFailure({
    kind: 'HTTPError',
    message: `the Jupyter server answered ${response.status} ${response.statusText}${said}.`,
    hint: 'Reload the page (you may need to log in again), then try again.',
    status: response.status
  });
}

async function readJSON(response: Response): Promise<any> {
  const text = await response.text();
  if (!text) {
    return null;
  }
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
