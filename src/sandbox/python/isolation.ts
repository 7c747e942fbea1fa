import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readlinkSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { SandboxUnavailableError } from '../../errors.js';
import type { EntryPoint } from '../entry.js';

/** `auto`: bubblewrap when it works here, else a plain child process. */
export type IsolationMode = 'auto' | 'bwrap' | 'process';

/** The isolation level in force for the Python interpreter processes. */
export type IsolationLevel = 'bwrap' | 'process';

/** How to start one interpreter process. */
export interface Launch {
  file: string;
  args: string[];
  cwd: string;
}

/** Chooses the isolation level and builds the command that starts an interpreter process. */
export class Isolation {
  readonly level: IsolationLevel;
  /** One line for logs and docs: what wraps the interpreter process. */
  readonly description: string;
  readonly #bwrap: string | undefined;
  readonly #setpriv: string | undefined;

  private constructor(level: IsolationLevel, bwrap: string | undefined, setpriv: string | undefined) {
    this.level = level;
    this.#bwrap = bwrap;
    this.#setpriv = setpriv;
    this.description =
      level === 'bwrap'
        ? 'bubblewrap: own mount, PID, network, IPC and UTS namespaces; read-only system files; no network'
        : `child process${setpriv === undefined ? '' : ' (killed with agentd: setpriv --pdeathsig)'}; no namespace isolation`;
  }

  /** Picks the level for `mode`; `bwrap` throws when bubblewrap is missing or cannot start here. */
  static choose(mode: IsolationMode, env: NodeJS.ProcessEnv = process.env): Isolation {
    const setpriv = findExecutable('setpriv', env);
    if (mode === 'process') return new Isolation('process', undefined, setpriv);
    const bwrap = findExecutable('bwrap', env);
    const works = bwrap !== undefined && probe(bwrap);
    if (works) return new Isolation('bwrap', bwrap, setpriv);
    if (mode === 'bwrap') {
      throw new SandboxUnavailableError(
        bwrap === undefined
          ? 'sandbox.python.isolation is "bwrap" but bubblewrap is not installed (apt-get install bubblewrap)'
          : 'sandbox.python.isolation is "bwrap" but bubblewrap cannot create namespaces here',
      );
    }
    return new Isolation('process', undefined, setpriv);
  }

  /**
   * The command for one interpreter process. Under bubblewrap the process sees the system's
   * /usr read-only, the Node binary, its own entry files and the Python module, and read-write
   * only its own scratch directory; it has no network and no view of other processes.
   */
  launch(entry: EntryPoint, wasmPath: string, processDir: string, packageRoot: string): Launch {
    const node = process.execPath;
    const nodeArgs = [
      ...entry.execArgv,
      '--no-warnings',
      '--expose-gc',
      '--max-old-space-size=64',
      entry.path,
      wasmPath,
    ];
    // From sources, `--import tsx` is resolved from the working directory.
    const cwd = entry.execArgv.length > 0 ? packageRoot : '/';
    if (this.level === 'process') {
      if (this.#setpriv === undefined) return { file: node, args: nodeArgs, cwd };
      return {
        file: this.#setpriv,
        args: ['--pdeathsig', 'KILL', '--no-new-privs', '--', node, ...nodeArgs],
        cwd,
      };
    }
    const args = ['--unshare-all', '--die-with-parent', '--new-session', ...systemFiles()];
    // /tmp first: the process directory lives under it and is bound on top.
    args.push('--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp');
    const readOnly = new Set<string>([realpathSync(node), realpathSync(wasmPath), dirname(entry.path)]);
    readOnly.add(join(packageRoot, 'package.json'));
    if (entry.execArgv.length > 0) {
      // Running from TypeScript sources (tests): the loader and its dependencies.
      readOnly.add(join(packageRoot, 'node_modules'));
      readOnly.add(join(packageRoot, 'tsconfig.json'));
      readOnly.add(join(packageRoot, 'src'));
    }
    for (const path of readOnly)
      if (existsSync(path) && !path.startsWith('/usr/')) args.push('--ro-bind', path, path);
    args.push('--bind', processDir, processDir);
    args.push('--chdir', cwd, '--', node, ...nodeArgs);
    return { file: this.#bwrap!, args, cwd };
  }
}

function findExecutable(name: string, env: NodeJS.ProcessEnv): string | undefined {
  const dirs = (env.PATH ?? '').split(':').filter((dir) => dir !== '');
  for (const dir of [...dirs, '/usr/bin', '/usr/local/bin', '/bin']) {
    const path = join(dir, name);
    if (existsSync(path)) return path;
  }
  return undefined;
}

/** /usr read-only, and the top-level links (or directories) programs need to load from it. */
function systemFiles(): string[] {
  const args = ['--ro-bind', '/usr', '/usr'];
  for (const top of ['/bin', '/sbin', '/lib', '/lib64', '/lib32', '/libx32']) {
    const stat = lstatSync(top, { throwIfNoEntry: false });
    if (stat === undefined) continue;
    if (stat.isSymbolicLink()) args.push('--symlink', readlinkSync(top), top);
    else args.push('--ro-bind', top, top);
  }
  return args;
}

/** bubblewrap can be installed yet unusable (no user namespaces in a container): try it once. */
function probe(bwrap: string): boolean {
  const result = spawnSync(
    bwrap,
    ['--unshare-all', '--die-with-parent', ...systemFiles(), '--', '/usr/bin/true'],
    {
      stdio: 'ignore',
      timeout: 5_000,
    },
  );
  return result.status === 0;
}
