"""Per-clip media consistency: the audio, the video and the phone alignment describe the same utterance.

A clip whose files disagree about its length was cut, truncated or mismatched somewhere (a wav truncated
to a few samples, a video cut to one frame, a TextGrid of another take); the builders skip it with a
reason naming the numbers and the files instead of storing phones and landmarks that point past the audio.
The alignment may end well before the audio (untranscribed trailing silence is common), so only an
alignment that runs past the end of the audio counts against the clip.
"""

# Shorter audio holds no utterance (a single phone lasts about 0.1 s); such files are truncated or empty.
MIN_AUDIO_SECONDS = 0.3
# Allowed disagreement: max(TOLERANCE_SECONDS, TOLERANCE_FRACTION * audio duration). Containers pad and
# cut by a frame or two, encoders add priming samples; a real mismatch is seconds, or a large fraction.
TOLERANCE_SECONDS = 0.5
TOLERANCE_FRACTION = 0.1


def tolerance(audio_seconds):
    return max(TOLERANCE_SECONDS, TOLERANCE_FRACTION * audio_seconds)


def audio_too_short(audio_path, audio_seconds, minimum=MIN_AUDIO_SECONDS):
    """The skip reason for audio shorter than `minimum`, else None."""
    if audio_seconds < minimum:
        return f"audio too short: {audio_seconds:.3f} s in {audio_path.name}, the minimum is {minimum:.2f} s"
    return None


def duration_mismatch(audio_path, audio_seconds, video_path, video_seconds, alignment_path=None,
                      alignment_end=None):
    """The skip reason when the video length or the alignment's end disagrees with the audio, else None.

    `alignment_end` is None for a clip without an alignment.
    """
    allowed = tolerance(audio_seconds)
    video_off = abs(video_seconds - audio_seconds) > allowed
    alignment_off = alignment_end is not None and alignment_end - audio_seconds > allowed
    if not (video_off or alignment_off):
        return None
    alignment = (f"alignment end {alignment_end:.3f} s ({alignment_path.name})" if alignment_end is not None
                 else "no alignment")
    return (f"inconsistent media durations: audio {audio_seconds:.3f} s ({audio_path.name}), video "
            f"{video_seconds:.3f} s ({video_path.name}), {alignment}; allowed difference {allowed:.2f} s")
