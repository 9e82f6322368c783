// calicoctl-style flags on Node's `util.parseArgs` tokenizer: `--flag=value`, `--flag value`,
// `-o value`, `-ovalue`, `-o=value`, boolean switches (also `--flag=true|false`), `--`, and
// positional arguments in any order. util.parseArgs splits the words; this module checks them
// against the verb's flags and gives the errors calicoctl users expect.
import { parseArgs as nodeParseArgs } from 'node:util';

export interface FlagSpec {
  /** Long name without dashes, e.g. "output". */
  name: string;
  short?: string;
  /** Takes a value (otherwise a boolean switch). */
  value?: boolean;
  /** May be given more than once (values collected). */
  repeat?: boolean;
}

export interface ParsedArgs {
  positional: string[];
  flags: Map<string, string[]>;
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

type NodeOptions = Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>;

export function parseArgs(argv: string[], specs: FlagSpec[]): ParsedArgs {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const options: NodeOptions = {};
  for (const s of specs) options[s.name] = { type: s.value ? 'string' : 'boolean', ...(s.short ? { short: s.short } : {}), multiple: true };
  const { tokens } = nodeParseArgs({ args: argv, options, strict: false, allowPositionals: true, tokens: true });
  const flags = new Map<string, string[]>();
  const positional: string[] = [];
  const set = (spec: FlagSpec, v: string) => {
    const prev = flags.get(spec.name);
    if (prev && !spec.repeat && spec.value) throw new UsageError(`flag --${spec.name} given more than once`);
    flags.set(spec.name, [...(prev ?? []), v]);
  };
  for (const t of tokens) {
    if (t.kind === 'positional') {
      positional.push(t.value);
      continue;
    }
    if (t.kind === 'option-terminator') continue;
    const spec = byName.get(t.name);
    const long = t.rawName.startsWith('--');
    if (!spec) throw new UsageError(`unknown flag ${long ? t.rawName : t.rawName.slice(0, 2)}`);
    const shown = long ? `--${spec.name}` : `-${spec.short}`;
    if (spec.value) {
      // `-o=yaml`: the short form's inline value keeps its '='
      const v = !long && t.inlineValue && t.value?.startsWith('=') ? t.value.slice(1) : t.value;
      if (v === undefined) throw new UsageError(`flag ${shown} needs a value`);
      set(spec, v);
    } else if (t.inlineValue) {
      if (!long) throw new UsageError(`unknown flag ${t.rawName}${t.value ?? ''}`);
      if (t.value !== 'true' && t.value !== 'false') throw new UsageError(`flag --${spec.name} takes true or false, got ${JSON.stringify(t.value)}`);
      set(spec, t.value);
    } else {
      set(spec, 'true');
    }
  }
  return { positional, flags };
}

export function flag(p: ParsedArgs, name: string): string | undefined {
  return p.flags.get(name)?.at(-1);
}

export function flagBool(p: ParsedArgs, name: string): boolean {
  return flag(p, name) === 'true';
}
