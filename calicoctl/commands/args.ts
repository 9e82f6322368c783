// A small command-line parser for calicoctl-style flags: `--flag=value`, `--flag value`,
// `-o value`, `-ovalue`, boolean switches, and positional arguments in any order.

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

export function parseArgs(argv: string[], specs: FlagSpec[]): ParsedArgs {
  const byLong = new Map(specs.map((s) => [s.name, s]));
  const byShort = new Map(specs.filter((s) => s.short).map((s) => [s.short!, s]));
  const flags = new Map<string, string[]>();
  const positional: string[] = [];
  const set = (spec: FlagSpec, v: string) => {
    const prev = flags.get(spec.name);
    if (prev && !spec.repeat && spec.value) throw new UsageError(`flag --${spec.name} given more than once`);
    flags.set(spec.name, [...(prev ?? []), v]);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = a.slice(2, eq < 0 ? undefined : eq);
      const spec = byLong.get(name);
      if (!spec) throw new UsageError(`unknown flag ${a.slice(0, eq < 0 ? undefined : eq)}`);
      if (spec.value) {
        const v = eq >= 0 ? a.slice(eq + 1) : argv[++i];
        if (v === undefined) throw new UsageError(`flag --${name} needs a value`);
        set(spec, v);
      } else {
        const v = eq >= 0 ? a.slice(eq + 1) : 'true';
        if (v !== 'true' && v !== 'false') throw new UsageError(`flag --${name} takes true or false, got ${JSON.stringify(v)}`);
        set(spec, v);
      }
    } else if (a.startsWith('-') && a.length > 1) {
      const spec = byShort.get(a[1]);
      if (!spec) throw new UsageError(`unknown flag ${a.slice(0, 2)}`);
      if (spec.value) {
        const rest = a.slice(2).replace(/^=/, '');
        const v = rest !== '' ? rest : argv[++i];
        if (v === undefined) throw new UsageError(`flag -${spec.short} needs a value`);
        set(spec, v);
      } else {
        if (a.length > 2) throw new UsageError(`unknown flag ${a}`);
        set(spec, 'true');
      }
    } else {
      positional.push(a);
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
