"""Layer D, the repo's own rules: what azure-ai-ml and the published schemas let through but Azure (or a reviewer)
would reject later. One module per concern, each exposing ``check(spec, emit, context)``:

uris       azureml: references are well-formed
bindings   ``${{...}}`` data bindings resolve
contracts  pipeline steps match their component's interface (committed registry contracts, local components)
names      Azure's naming rules
ranges     numbers in Azure's ranges
catalog    SKU allow-lists, GPU counts, retired models, unknown VM sizes
files      local paths exist
policy     everything ``policy: prod`` means
kinds      the few checks that belong to one kind only (identities, a model's path, version types)
open_keys  near-miss keys where the SDK takes any key (a component's ``resources``)

Pure functions over parsed specs. What a rule receives (``Emit``, ``RuleContext``) lives in ``support``, which
imports no rule; ``concerns`` lists the concerns in order and runs them; ``spec_from_dict``
(tools.validate.document) builds a Spec from a literal dict for tests.
"""
