// Errors of the derived kinds that the datastore contract has no class for.
import { DatastoreError } from '../../api.js';

/**
 * A write the derived kind does not allow (Calico's ErrorOperationNotSupported): Node create and
 * delete, every Profile and Kubernetes NetworkPolicy write, WorkloadEndpoint writes not made by the CNI.
 * The message is Calico's: `operation <Op> is not supported on <key>[: <reason>]`.
 */
export class OperationNotSupportedError extends DatastoreError {
  constructor(
    readonly operation: string,
    key: string,
    readonly reason?: string,
  ) {
    super(`operation ${operation} is not supported on ${key}${reason ? `: ${reason}` : ''}`, key);
  }
}

/** Input a derived kind cannot convert (a malformed v3 value given to a write, a bad revision). */
export class InvalidDerivedValueError extends DatastoreError {}
