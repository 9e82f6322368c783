// `calicoctl version`. calicoctl prints each line with Go's fmt.Println(label, value), whose
// separating space puts every value at column 20.

export interface VersionView {
  clientVersion: string;
  gitCommit: string;
  /** `--client`: only the two client lines. */
  clientOnly?: boolean;
  /**
   * The cluster's ClusterInformation values; an empty or missing value prints `unknown`.
   * `null` means no client configuration could be built: `Unable to detect installed Calico
   * version` follows the client lines. `undefined` (with clientOnly false) also prints nothing
   * more: calicoctl then fails with `unable to retrieve Cluster Version or Type: …`, which the
   * caller reports as the error.
   */
  cluster?: { calicoVersion?: string; clusterType?: string } | null;
}

function line(label: string, value: string): string {
  return `${label} ${value}\n`;
}

export function renderVersion(v: VersionView): string {
  let out = line('Client Version:   ', v.clientVersion) + line('Git commit:       ', v.gitCommit);
  if (v.clientOnly) return out;
  if (v.cluster === null) return out + 'Unable to detect installed Calico version\n';
  if (v.cluster === undefined) return out;
  out += line('Cluster Version:  ', v.cluster.calicoVersion || 'unknown');
  out += line('Cluster Type:     ', v.cluster.clusterType || 'unknown');
  return out;
}
