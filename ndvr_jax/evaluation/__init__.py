"""Retrieval evaluation: metrics (AP, mAP, µAP, PR curves, mAP@k), FIVR/CC_WEB protocols over
similarity matrices or JSONs (`retrieval`), benchmark reports (`report`) and plots (`plots`)."""
