"""One module per agent: the OCF semantics of that resource type.

``AGENTS`` maps each agent's name (as Pacemaker knows it, ``ocf:pyra:<name>``) to its module and class; the
shared launcher (``launch.py``) imports only the one it was invoked as.
"""

AGENTS = {
    "LVMFilesystem": ("pyra.agents.lvmfilesystem", "LVMFilesystem"),
    "ManageVE": ("pyra.agents.manageve", "ManageVE"),
    "PyraExample": ("pyra.agents.example", "PyraExample"),
    "TransientDomain": ("pyra.agents.transientdomain", "TransientDomain"),
    "VServer": ("pyra.agents.vserver", "VServer"),
}


def load(name):
    """The agent class for ``name``; KeyError for an unknown name."""
    module_name, class_name = AGENTS[name]
    module = __import__(module_name, fromlist=[class_name])
    return getattr(module, class_name)
