"""The real-photo check set: public-domain portraits shipped with hand-written records of what a
person sees (records), the avatar's reading in the same categories (reading), the per-attribute
score (score) and the sheet (sheet). `swiftavatar check-photos` runs it."""
