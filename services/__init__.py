"""Domain services that are not one model's business."""
