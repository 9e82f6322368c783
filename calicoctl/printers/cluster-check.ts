// `tortiectl cluster check`'s table: one row per finding (severity, finding, evidence, fix).
import type { Finding } from '../commands/cluster-findings.js';
import { renderBoxTable } from './tablewriter.js';

export function renderFindings(findings: readonly Finding[], ctx: { nodes: number; reporting: number; window: string }): string {
  const head = `Checked ${ctx.nodes} node(s), ${ctx.reporting} reporting (CalicoNodeStatus); events of the last ${ctx.window}.\n`;
  if (findings.length === 0) return `${head}No problems found.\n`;
  const rows = findings.map((f) => [f.severity.toUpperCase(), f.finding, f.evidence.join('; '), f.fix]);
  const errors = findings.filter((f) => f.severity === 'error').length;
  return `${head}${renderBoxTable(['Severity', 'Finding', 'Evidence', 'Fix'], rows)}${findings.length} finding(s): ${errors} error(s), ${findings.length - errors} warning(s).\n`;
}
