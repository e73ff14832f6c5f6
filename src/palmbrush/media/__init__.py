"""Images, video files and cameras in and out of style models; the filters appended to them."""
