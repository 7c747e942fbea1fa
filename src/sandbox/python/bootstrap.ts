/** Where the run's scratch directory appears inside the interpreter (its only preopened path). */
export const GUEST_DIR = '/scratch';
/** The file the bootstrap leaves the result in (read and removed by the host, never returned). */
export const RESULT_FILE = '.agentd-result.json';

/**
 * The program CPython runs (`python -c`) in every pooled interpreter. It starts the interpreter
 * ahead of the run, says so on stderr with the token it was given, then blocks reading the run
 * from stdin: a header line `<bytes> <max result chars>` and the source. It runs the source as
 * `__main__` in /scratch, evaluates a final expression statement as the result, writes the
 * result file, flushes, and leaves with `os._exit` (interpreter finalisation would cost more
 * than the run; the user's open files are closed first by dropping the program's globals).
 * A header of 0 bytes ends the interpreter without running anything.
 *
 * It imports only built-in modules before the run (_ast, _json, not ast, json or traceback):
 * pure-Python stdlib modules cost 50–200 ms to import in WASI, paid for every interpreter.
 * Tracebacks are printed by the interpreter's own C hook, results encoded by a small encoder.
 */
export const BOOTSTRAP = String.raw`
import sys
def _agentd(ready):
    import os, io, gc, atexit, builtins, _ast, _json
    quote = _json.encode_basestring_ascii
    def encode(v, depth):
        if depth > 64:
            raise ValueError('nested too deeply')
        if v is None or v is True or v is False:
            return 'null' if v is None else 'true' if v else 'false'
        if isinstance(v, int):
            return int.__repr__(v)
        if isinstance(v, float):
            if v != v or v in (float('inf'), float('-inf')):
                raise ValueError('not finite')
            return float.__repr__(v)
        if isinstance(v, str):
            return quote(v)
        if isinstance(v, (list, tuple)):
            return '[' + ','.join([encode(x, depth + 1) for x in v]) + ']'
        if isinstance(v, dict):
            items = []
            for k, x in v.items():
                if not isinstance(k, str):
                    raise TypeError('key')
                items.append(quote(k) + ':' + encode(x, depth + 1))
            return '{' + ','.join(items) + '}'
        raise TypeError('type')
    def show(e, tb):
        try:
            sys.__excepthook__(type(e), e.with_traceback(tb), tb)
        except BaseException:
            sys.stderr.write(type(e).__name__ + '\n')
    def describe(e):
        try:
            return ('%s: %s' % (type(e).__name__, e))[:500]
        except BaseException:
            return type(e).__name__
    sys.stderr.write(ready + '\n')
    sys.stderr.flush()
    header = sys.stdin.buffer.readline().split()
    size = int(header[0]) if header else 0
    if size <= 0:
        os._exit(0)
    max_result = int(header[1])
    source = sys.stdin.buffer.read(size).decode('utf-8', 'replace')
    sys.stdin = io.StringIO('')
    sys.argv = ['main.py']
    builtins.exit = builtins.quit = sys.exit
    os.chdir('${GUEST_DIR}')
    sys.path.insert(0, '${GUEST_DIR}')
    scope = {'__name__': '__main__', '__builtins__': builtins, '__file__': '${GUEST_DIR}/main.py'}
    result, note, error, memory_error, status = None, None, None, False, 0
    try:
        try:
            tree = compile(source, 'main.py', 'exec', _ast.PyCF_ONLY_AST)
            last = None
            if tree.body and isinstance(tree.body[-1], _ast.Expr):
                last = _ast.Expression(tree.body.pop().value)
            body = compile(tree, 'main.py', 'exec')
            tail = None if last is None else compile(last, 'main.py', 'eval')
        except SyntaxError as e:
            show(e, None)
            error, status = describe(e), 1
        else:
            exec(body, scope)
            if tail is not None:
                value = eval(tail, scope)
                if value is not None:
                    try:
                        text = encode(value, 0)
                    except (TypeError, ValueError, RecursionError):
                        try:
                            text = quote(repr(value))
                        except Exception as e:
                            text, note = None, 'the result could not be represented: ' + describe(e)
                    if text is None:
                        pass
                    elif len(text) <= max_result:
                        result = text
                    else:
                        note = 'the result (%d characters of JSON) is over %d and was dropped' % (len(text), max_result)
    except SystemExit as e:
        if e.code is None:
            status = 0
        elif isinstance(e.code, int):
            status = e.code & 255
        else:
            sys.stderr.write(str(e.code) + '\n')
            status = 1
    except MemoryError as e:
        memory_error, status = True, 1
        show(e, e.__traceback__.tb_next)
    except BaseException as e:
        error, status = describe(e), 1
        show(e, e.__traceback__.tb_next)
    try:
        scope.clear()
        gc.collect()
        atexit._run_exitfuncs()
    except BaseException:
        pass
    try:
        fields = ['"memory_error":' + ('true' if memory_error else 'false')]
        for name, text in (('result', result), ('note', note), ('error', error)):
            if text is not None:
                fields.append('"%s":%s' % (name, quote(text)))
        with open('${GUEST_DIR}/${RESULT_FILE}', 'w') as f:
            f.write('{' + ','.join(fields) + '}')
    except BaseException:
        pass
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        pass
    os._exit(status)
_agentd(sys.argv[1])
`;
