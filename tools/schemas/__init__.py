"""Writers of the facts under schemas/: the JSON schema export (`schemas`), registry component contracts
(`contracts add`) and the rules page (`rules`). Validation reads what these write."""
