"""Detection-specific pieces for mmdet 3.x (imported by the configs' ``custom_imports``).

The neck (``LSNetFPN``) is shared with segmentation and lives in ``lsnet.mm``; importing this
package makes sure it is registered.
"""
import lsnet  # noqa: F401  (registers LSNet, VAN, LSNetFPN)
