// IPAMConfiguration (the one named "default"): how blocks are claimed and borrowed.
//
// Defaults (always present in the stored form, as Calico's non-omitempty fields are):
// strictAffinity false, autoAllocateBlocks true, maxBlocksPerHost 0 (0 means the built-in 20).
// Refused, as Calico's SetIPAMConfig refuses them: strictAffinity false together with
// autoAllocateBlocks false (no way to get an address), and maxBlocksPerHost > 0 without
// strictAffinity true.

import { type Ctx, type Obj, checkKnown, put, readBool, readEnum, readInt } from './context.js';

export function validateIPAMConfigurationSpec(ctx: Ctx, spec: Obj): Obj {
  checkKnown(
    ctx,
    spec,
    'spec',
    ['strictAffinity', 'autoAllocateBlocks', 'maxBlocksPerHost', 'kubeVirtVMAddressPersistence', 'ipCooldownSeconds'],
    'IPAMConfiguration spec',
  );
  const strictAffinity = readBool(ctx, spec, 'strictAffinity', 'spec') ?? false;
  const autoAllocateBlocks = readBool(ctx, spec, 'autoAllocateBlocks', 'spec') ?? true;
  const maxBlocksPerHost = readInt(ctx, spec, 'maxBlocksPerHost', 'spec', { min: 0, max: 1000000 }) ?? 0;
  const out: Obj = { strictAffinity, autoAllocateBlocks, maxBlocksPerHost };
  put(out, 'kubeVirtVMAddressPersistence', readEnum(ctx, spec, 'kubeVirtVMAddressPersistence', 'spec', ['Enabled', 'Disabled']));
  const cooldown = readInt(ctx, spec, 'ipCooldownSeconds', 'spec', { min: 0, max: 1200 });
  if (cooldown) out.ipCooldownSeconds = cooldown;

  if (!strictAffinity && !autoAllocateBlocks) {
    ctx.say(
      'spec.autoAllocateBlocks',
      false,
      'autoAllocateBlocks false is not allowed while strictAffinity is false (no addresses could ever be assigned)',
    );
  }
  if (maxBlocksPerHost > 0 && !strictAffinity) {
    ctx.say('spec.maxBlocksPerHost', maxBlocksPerHost, `maxBlocksPerHost ${maxBlocksPerHost} requires strictAffinity: true`);
  }
  return out;
}
