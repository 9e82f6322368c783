// The runtime rig: drive CNI plugins through real container runtimes (containerd's `ctr run --cni`,
// podman with its CNI backend) inside an isolated "node host". See README.md in this folder.

export * from './common.js';
export * from './containerd.js';
export * from './image.js';
export * from './node.js';
export * from './podman.js';
export * from './proc.js';
export * from './recorder.js';
