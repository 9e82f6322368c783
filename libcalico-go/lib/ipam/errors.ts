// Errors the allocator raises for requests it cannot satisfy (as opposed to datastore failures).

export class IPAMError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The address asked for is already taken. */
export class AddressInUseError extends IPAMError {}
